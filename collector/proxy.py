"""The reverse proxy: forward every request to the model server, untouched; note what passed.

The caller's answer never waits on monitoring: the only capture work on the request path is
keeping references to body bytes already in hand and appending one object to a queue.
Bodies pass byte for byte in both directions (Content-Encoding included — only the captured
copy is decoded, later); small bodies are forwarded whole, large and streamed ones (chunked,
server-sent events) chunk by chunk as they arrive, with back-pressure.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from multidict import CIMultiDict

from collector.capture import Capturer, Exchange
from collector.metrics import SidecarMetrics
from collector.pipeline import Pipeline
from collector.routing import resolve
from collector.upstream import (
    Headers,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
    UpstreamTimeout,
)
from modeltap.schema import MAX_ID, MAX_NAME, bounded

log = logging.getLogger("modeltap.proxy")

REQUEST_ID = "X-Request-ID"
INLINE_LIMIT = 1 << 20  # bodies up to this size are read whole; larger ones are streamed
_HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    )
)
_FRAMING = frozenset((b"content-length", b"transfer-encoding", b"expect"))
_NO_BODY = frozenset((204, 304))
_UNDECODED = re.compile(r"[\udc80-\udcff]")  # bytes aiohttp could not decode as UTF-8


def forwardable(raw: Headers | tuple[tuple[bytes, bytes], ...]) -> Headers:
    """Headers minus hop-by-hop ones (and any the Connection header names)."""
    named = {
        token.strip().lower()
        for name, value in raw
        if name.lower() == b"connection"
        for token in value.split(b",")
    }
    return [(n, v) for n, v in raw if n.lower() not in _HOP_BY_HOP and n.lower() not in named]


class Ids:
    """Unique 32-hex-digit ids: 80 random bits per process, then a counter.

    uuid4() reads the kernel's random source on every call, which was 6% of the proxy's
    time under load; this is as unique across sidecars and costs a string format.
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(10).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


def echoed(request_id: str) -> str:
    """The X-Request-ID to send back: the caller's own, unless it holds bytes that are not
    UTF-8, which aiohttp cannot write back; then the stand-in modeltap stores it under
    (see ``bounded``), which is also the id labels for this call join on.

    >>> echoed("café-1")
    'café-1'
    >>> echoed("caf\\udce9")[:4]
    'caf?'
    """
    if _UNDECODED.search(request_id):
        return bounded(request_id, MAX_ID)
    return request_id


def sampled(request_id: str, rate: float) -> bool:
    """Deterministic per request id, so a retried request is captured the same way."""
    if rate >= 1.0:
        return True
    return zlib.crc32(request_id.encode()) < rate * 2**32


@dataclass(slots=True)
class _Call:
    """One request in flight: what is forwarded, what is captured, and until which size."""

    request: web.BaseRequest
    exchange: Exchange
    capture: bool
    limit: int
    sent: float = 0.0

    def keep(self, kept: list[bytes] | None, chunk: bytes, total: int) -> list[bytes] | None:
        """Add a chunk to the captured copy, giving it up once it passes the limit."""
        if kept is None:
            return None
        if total > self.limit:
            self.exchange.note = "too_large"
            self.exchange.request_body = None
            return None
        kept.append(chunk)
        return kept


class Proxy:
    """The aiohttp handler of the sidecar's data port."""

    def __init__(
        self,
        pool: UpstreamPool,
        pipeline: Pipeline,
        capturer: Capturer,
        metrics: SidecarMetrics,
        *,
        model: str,
        version: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._pool = pool
        self._pipeline = pipeline
        self._capturer = capturer
        self._metrics = metrics
        self._model = model
        self._version = version
        self._clock = clock
        self._ids = Ids()
        self._record_failed = False

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = request.headers.get(REQUEST_ID) or self._ids.next()
        route = resolve(request.path)
        # Bounded here, so the metrics and the stored records name the same model.
        model = bounded(route.model or self._model, MAX_NAME)
        version = bounded(route.version or self._version, MAX_NAME)
        settings = self._capturer.capture_settings(model)
        capture = request.method == "POST" and sampled(request_id, settings.sample_rate)
        skipped = "sampled_out" if request.method == "POST" else "not_inference"
        exchange = Exchange(
            event_id=self._ids.next(),
            request_id=request_id,
            model=model,
            version=version,
            started=self._clock(),
            latency_ms=0.0,
            status=0,
            protocol=route.protocol,
            note=None if capture else skipped,
            request_encoding=request.headers.get("Content-Encoding"),
        )
        self._metrics.in_flight.inc()
        try:
            return await self._forward(_Call(request, exchange, capture, settings.max_body_bytes))
        finally:
            self._metrics.in_flight.dec()
            exchange.latency_ms = (time.perf_counter() - started) * 1000
            self._record(exchange)

    async def _forward(self, call: _Call) -> web.StreamResponse:
        request, exchange = call.request, call.exchange
        if request.headers.get("Upgrade"):
            exchange.error = "upgrade_refused"
            return self._error(exchange, 501, "protocol upgrades (WebSocket) are not proxied")
        headers = [(n, v) for n, v in forwardable(request.raw_headers) if n.lower() not in _FRAMING]
        if REQUEST_ID not in request.headers:
            headers.append((REQUEST_ID.encode(), exchange.request_id.encode()))
        if request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        length = request.content_length
        body: bytes | AsyncIterator[bytes]
        if (length is not None and length <= INLINE_LIMIT) or not request.body_exists:
            body = await request.read() if request.body_exists else b""
            exchange.request_bytes = len(body)
            if call.capture and call.keep([], body, len(body)) is not None:
                exchange.request_body = body
        else:
            body = self._stream_request(call)
        call.sent = time.perf_counter()
        try:
            upstream = await self._pool.request(
                request.method.encode(),
                request.raw_path.encode(),
                headers,
                body,
                content_length=length,
            )
        except UpstreamTimeout as error:
            exchange.error = "upstream_timeout"
            return self._error(exchange, 504, str(error))
        except UpstreamError as error:
            exchange.error = "upstream_unreachable"
            return self._error(exchange, 502, str(error))
        try:
            return await self._respond(call, upstream)
        finally:
            upstream.release()

    async def _stream_request(self, call: _Call) -> AsyncIterator[bytes]:
        kept: list[bytes] | None = [] if call.capture else None
        async for chunk in call.request.content.iter_any():
            call.exchange.request_bytes += len(chunk)
            kept = call.keep(kept, chunk, call.exchange.request_bytes)
            yield chunk
        if kept is not None:
            call.exchange.request_body = b"".join(kept)

    async def _respond(self, call: _Call, upstream: UpstreamResponse) -> web.StreamResponse:
        request, exchange = call.request, call.exchange
        exchange.status = upstream.status
        headers = CIMultiDict(
            # UTF-8, as aiohttp writes them back out: a non-ASCII value (a file name in
            # Content-Disposition) then leaves byte for byte as it came.
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in forwardable(upstream.headers)
            if name.lower() != b"content-length"
        )
        if REQUEST_ID not in headers:
            headers[REQUEST_ID] = echoed(exchange.request_id)
        exchange.response_encoding = headers.get("Content-Encoding")
        reason = upstream.reason.decode("latin-1") or None
        bodiless = upstream.status in _NO_BODY or request.method == "HEAD"
        if (
            not bodiless
            and upstream.content_length is not None
            and (upstream.content_length <= INLINE_LIMIT)
        ):
            try:
                data = await upstream.read(self._pool.read_timeout)
            except UpstreamTimeout as error:
                exchange.error = "upstream_timeout"
                return self._error(exchange, 504, f"the model server stopped mid-answer: {error}")
            except UpstreamError as error:
                # Nothing was sent to the caller yet: say what happened, as for a refused
                # connection, rather than relay a truncated answer.
                exchange.error = "upstream_broken"
                return self._error(exchange, 502, str(error))
            self._finish(call, [data], len(data))
            return web.Response(status=upstream.status, reason=reason, body=data, headers=headers)
        response = web.StreamResponse(status=upstream.status, reason=reason, headers=headers)
        if upstream.content_length is not None:
            # Announced as the upstream did (HEAD answers announce what they do not send).
            response.content_length = upstream.content_length
        if bodiless:
            self._finish(call, [], 0)
            await response.prepare(request)
            await response.write_eof()
            return response
        await response.prepare(request)
        kept: list[bytes] | None = [] if call.capture and exchange.note is None else None
        total = 0
        try:
            async for chunk in upstream.chunks(self._pool.read_timeout):
                total += len(chunk)
                kept = call.keep(kept, chunk, total)
                await response.write(chunk)
        except (UpstreamError, ConnectionError) as error:
            # Headers are gone already: the caller sees a cut-off stream, as from the model
            # (or has gone). Closing the connection, rather than raising, tells the caller the
            # answer is incomplete without a traceback in the log for each such call.
            upstream_failed = isinstance(error, UpstreamError)
            exchange.error = "upstream_broken" if upstream_failed else "client_disconnected"
            if request.transport is not None:
                request.transport.close()
            return response
        finally:
            exchange.response_bytes = total
        self._finish(call, kept, total)
        await response.write_eof()
        return response

    def _finish(self, call: _Call, kept: list[bytes] | None, total: int) -> None:
        exchange = call.exchange
        exchange.upstream_latency_ms = (time.perf_counter() - call.sent) * 1000
        exchange.response_bytes = total
        if call.capture and exchange.note is None and kept is not None:
            if total <= call.limit:
                exchange.response_body = b"".join(kept)
            else:
                call.keep([], b"", total)  # marks the exchange too large

    def _error(self, exchange: Exchange, status: int, detail: str) -> web.Response:
        exchange.status = status
        body = {
            "error": _TITLES[status],
            "detail": detail,
            "request_id": echoed(exchange.request_id),
        }
        return web.Response(
            status=status,
            text=json.dumps(body),
            content_type="application/json",
            headers={REQUEST_ID: echoed(exchange.request_id)},
        )

    def _record(self, exchange: Exchange) -> None:
        if exchange.status == 0:
            exchange.status = 499  # the caller went away before any status was sent
        try:
            self._metrics.observe(exchange)
            self._pipeline.offer(exchange)
        except Exception:  # monitoring must never fail a request; say so once
            if not self._record_failed:
                self._record_failed = True
                log.exception("recording a request failed; capture may be incomplete")


_TITLES = {501: "not implemented", 502: "upstream unreachable", 504: "upstream timeout"}
