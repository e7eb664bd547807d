"""From what the proxy saw (an ``Exchange``) to records, off the request path.

Parsing never raises: a body that cannot be read still yields its request record, with the
reason in ``capture_note`` ("unparsed: ..."), and the caller counts it.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.adapters import PayloadError, extract
from modeltap.codec import dumps
from modeltap.config import CaptureConfig, ModelConfig, PayloadConfig
from modeltap.events import CapturedEvent
from modeltap.schema import MAX_ID, MAX_NAME, PredictionRecord, RequestRecord, bounded, printable

UNPARSED = "unparsed: "


@dataclass(slots=True)
class Exchange:
    """One call as the proxy saw it; bodies are present only when they are to be captured."""

    event_id: str
    request_id: str
    model: str
    version: str
    started: datetime
    latency_ms: float | None  # None: not measured (a log line without one)
    status: int
    upstream_latency_ms: float | None = None
    request_bytes: int = 0
    response_bytes: int = 0
    protocol: str | None = None
    error: str | None = None
    note: str | None = None
    request_body: bytes | None = None
    response_body: bytes | None = None
    request_encoding: str | None = None
    response_encoding: str | None = None

    @property
    def held_bytes(self) -> int:
        """Memory the exchange pins while queued."""
        return len(self.request_body or b"") + len(self.response_body or b"") + 256


class Capturer:
    """Turns exchanges into events using each model's payload and capture settings."""

    def __init__(self, models: Mapping[str, ModelConfig]) -> None:
        self._models = models
        self._defaults = CaptureConfig()

    def capture_settings(self, model: str) -> CaptureConfig:
        """The model's capture settings, or defaults for a model the config does not name."""
        found = self._models.get(model)
        return found.capture if found is not None else self._defaults

    def to_event(self, exchange: Exchange) -> CapturedEvent:
        """Request record plus prediction rows; unparseable bodies give a note, not an error."""
        note = exchange.note
        rows: tuple[PredictionRecord, ...] = ()
        if note is None and exchange.error is None:
            if not 200 <= exchange.status < 300:
                note = f"no_prediction: status {exchange.status}"
            elif exchange.request_body is None or exchange.response_body is None:
                note = "no_body"
            else:
                try:
                    rows = self._rows(exchange, exchange.request_body, exchange.response_body)
                except PayloadError as error:
                    note = UNPARSED + str(error)
        # Whatever a caller sent, the records fit the tables (and the spool's own schema):
        # an over-long or unprintable id becomes a stable stand-in (see ``bounded``), so
        # one odd request can never make a batch unstorable.
        request = RequestRecord(
            event_id=exchange.event_id,
            request_id=bounded(exchange.request_id, MAX_ID),
            model=bounded(exchange.model, MAX_NAME),
            version=bounded(exchange.version, MAX_NAME),
            ts=exchange.started,
            latency_ms=_measured(exchange.latency_ms),
            status_code=exchange.status,
            upstream_latency_ms=_measured(exchange.upstream_latency_ms),
            request_bytes=exchange.request_bytes,
            response_bytes=exchange.response_bytes,
            error=exchange.error,
            capture_note=None if note is None else printable(note),
        )
        return CapturedEvent(request, rows)

    def _rows(
        self, exchange: Exchange, request_body: bytes, response_body: bytes
    ) -> tuple[PredictionRecord, ...]:
        model = self._models.get(exchange.model)
        settings = self.capture_settings(exchange.model)
        payload = model.payload if model is not None else PayloadConfig()
        names = [feature.name for feature in model.features] if model is not None else []
        request = _json(request_body, exchange.request_encoding, settings, "request")
        response = _json(response_body, exchange.response_encoding, settings, "response")
        rows = extract(
            request, response, payload=payload, feature_names=names, hint=exchange.protocol
        )
        key = settings.hash_key.get_secret_value().encode() if settings.hash_key else None
        request_id = bounded(exchange.request_id, MAX_ID)
        model_name = bounded(exchange.model, MAX_NAME)
        version = bounded(exchange.version, MAX_NAME)
        return tuple(
            PredictionRecord(
                event_id=exchange.event_id,
                row_index=index,
                request_id=request_id,
                model=model_name,
                version=version,
                ts=exchange.started,
                features=_redact(features, settings, key),
                prediction=rows.predictions[index],
                score=_finite(rows.scores[index]) if index < len(rows.scores) else None,
                class_scores=rows.class_scores[index] if index < len(rows.class_scores) else None,
                instance_id=(
                    None
                    if rows.instance_ids[index] is None
                    else bounded(str(rows.instance_ids[index]), MAX_ID)
                ),
            )
            for index, features in enumerate(rows.features)
        )


def _measured(value: float | None) -> float | None:
    """A finite, non-negative figure, or None (NaN and infinities are no measurement)."""
    finite = _finite(value)
    return finite if finite is not None and finite >= 0 else None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _json(body: bytes, encoding: str | None, settings: CaptureConfig, what: str) -> Any:
    data = _decode(body, encoding, settings.max_body_bytes, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadError(f"{what} body is not UTF-8 (byte {error.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PayloadError(f"{what} body is not JSON ({error.msg} at {error.pos})") from None
    except RecursionError:
        raise PayloadError(f"{what} body nests too deeply") from None


def _decode(body: bytes, encoding: str | None, limit: int, what: str) -> bytes:
    """Undo Content-Encoding for the captured copy only, refusing decompression bombs."""
    coding = (encoding or "identity").strip().lower()
    if coding in ("identity", ""):
        return body
    if coding not in ("gzip", "x-gzip", "deflate"):
        raise PayloadError(f"{what} content-encoding {coding!r} is not decoded")
    wbits = 16 + zlib.MAX_WBITS if coding != "deflate" else zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    try:
        data = decoder.decompress(body, limit + 1)
    except zlib.error:
        if coding == "deflate":  # some servers send raw deflate without the zlib header
            try:
                data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, limit + 1)
            except zlib.error as error:
                raise PayloadError(f"{what} body is not valid deflate data: {error}") from None
        else:
            raise PayloadError(f"{what} body is not valid gzip data") from None
    except (EOFError, gzip.BadGzipFile):  # pragma: no cover - zlib reports these itself
        raise PayloadError(f"{what} body is truncated gzip data") from None
    if len(data) > limit:
        raise PayloadError(f"{what} body decompresses past max_body_bytes ({limit})")
    if coding != "deflate" and not decoder.eof:
        raise PayloadError(f"{what} body is truncated gzip data")
    return data


def _redact(features: dict[str, Any], settings: CaptureConfig, key: bytes | None) -> dict[str, Any]:
    if not settings.drop_fields and not settings.hash_fields:
        return features
    for name in settings.drop_fields:
        features.pop(name, None)
    for name in settings.hash_fields:
        if name in features and features[name] is not None:
            features[name] = pseudonym(features[name], key)
    return features


def pseudonym(value: Any, key: bytes | None) -> str:
    """A stable stand-in for a sensitive value: HMAC-SHA256 with the key, else SHA-256.

    Without a key a low-entropy value (an email, a phone number) can be recovered by
    hashing guesses, which is why the config offers ``hash_key``.

    >>> pseudonym("ada@example.com", b"k")[:12]
    'sha256:60cf8'
    """
    data = dumps(value).encode()
    digest = (hmac.new(key, data, hashlib.sha256) if key else hashlib.sha256(data)).hexdigest()
    return f"sha256:{digest}"
