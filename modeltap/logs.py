"""Logging for the daemons (sidecar, collect, serve, detect): one format, to stderr."""

from __future__ import annotations

import logging
import sys

# kafka-python logs every refused connection and every topic it has not seen yet at
# ERROR; modeltap reports what matters (a sink or a batch that failed) itself.
_QUIET = (
    "kafka.cluster",
    "kafka.net",
    "kafka.conn",
    "kafka.client",
    "kafka.producer.sender",
    "kafka.coordinator",
    "kafka.consumer.fetcher",
)


class MalformedRequests(logging.Filter):
    """One line, not a traceback, for requests the HTTP server could not parse; at most one
    such line every ``every`` seconds, saying how many were left out.

    aiohttp logs each malformed request with a full traceback at ERROR, so any caller can
    fill the log (and the disk under it) by sending garbage. Tracebacks of real errors, and
    everything else, pass unchanged.
    """

    def __init__(self, every: float = 60.0) -> None:
        super().__init__()
        self._every = every
        self._last: float | None = None
        self._left_out = 0

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError  # noqa: PLC0415

        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        if self._last is not None and record.created - self._last < self._every:
            self._left_out += 1
            return False
        detail = " ".join(str(error.message or error).split())[:200]
        more = f" ({self._left_out} more since the last such line)" if self._left_out else ""
        record.msg = f"refused a malformed HTTP request from %s: {detail}{more}"
        record.args = record.args[:1] if isinstance(record.args, tuple) else ()
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        self._last, self._left_out = record.created, 0
        return True


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the root logger once, at start-up."""
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(existing, MalformedRequests) for existing in server.filters):
        server.addFilter(MalformedRequests())
