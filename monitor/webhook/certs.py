"""A TLS server context that follows its certificate files, for a mounted Secret.

The kubelet updates a mounted Secret by swapping a symlink, and cert-manager renews a
certificate well before it expires; a webhook that read its certificate once at start
would serve the old one until it expired. This one re-reads both files when asked (the
server asks every few seconds) and loads them into the same context, so every new
handshake gets the new certificate while connections already open keep theirs.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
from pathlib import Path

from modeltap.errors import ConfigError

log = logging.getLogger("modeltap.webhook")


class ReloadingCertificate:
    """``context`` serves ``cert``/``key``; :meth:`reload` picks up changed files."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = cert
        self.key = key
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._loaded: str | None = None
        self._failed: str | None = None
        try:
            self._load(self._fingerprint())
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(
                f"cannot use the certificate {cert} with key {key}: {error}; "
                "check --cert-file and --key-file (the chart mounts them from a Secret)"
            ) from None

    def reload(self) -> bool:
        """Load the files if they changed since the last load; True when it did.

        A pair that does not load (a certificate written before its key, say) keeps the old
        one serving; it is retried on the next call, and logged once.
        """
        try:
            fingerprint = self._fingerprint()
        except OSError as error:
            self._fail(f"unreadable:{error}", f"cannot read the certificate files: {error}")
            return False
        if fingerprint == self._loaded:
            return False
        try:
            self._load(fingerprint)
        except (OSError, ssl.SSLError) as error:
            self._fail(fingerprint, f"the new certificate does not load ({error})")
            return False
        log.info("loaded the renewed certificate from %s", self.cert)
        return True

    def _fingerprint(self) -> str:
        # The contents, not the modification times: a Secret update swaps a symlink and
        # may keep times, and a test may rewrite a file twice within one clock tick.
        digest = hashlib.sha256(self.cert.read_bytes())
        digest.update(b"\0")
        digest.update(self.key.read_bytes())
        return digest.hexdigest()

    def _load(self, fingerprint: str) -> None:
        self.context.load_cert_chain(self.cert, self.key)
        self._loaded, self._failed = fingerprint, None

    def _fail(self, fingerprint: str, message: str) -> None:
        if fingerprint != self._failed:
            log.warning("%s; still serving the previous certificate", message)
        self._failed = fingerprint
