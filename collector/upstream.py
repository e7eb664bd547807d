"""A lean HTTP/1.1 client for the one upstream a sidecar talks to, on httptools.

Why not aiohttp's client: measured side by side (bench/proxy_stacks.py) a pass-through proxy
built on aiohttp's server and client did ~10k requests/s on one core, and the same server with
this client ~20k; the client half was three quarters of the cost (URL objects, cookie jar,
header merging, response wrappers). A sidecar talks to exactly one origin over loopback, so
it needs none of that: a pool of keep-alive connections, httptools (llhttp) to find message
boundaries, and back-pressure in both directions.

Scope: HTTP/1.1 and 1.0 origins, Content-Length, chunked and close-delimited bodies, 1xx
interim responses skipped, 204/304/HEAD without bodies. Upgrades (WebSocket) are not
proxied; the proxy answers them itself.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

Headers = list[tuple[bytes, bytes]]

_READ_HIGH_WATER = 1 << 20  # pause reading the upstream when this much body is unconsumed


class UpstreamError(Exception):
    """The upstream could not give a complete answer (the proxy replies 502)."""


class UpstreamTimeout(UpstreamError):  # noqa: N818 - reads better at the raise site
    """The upstream did not answer in time (the proxy replies 504)."""


class _StaleConnection(UpstreamError):  # noqa: N818
    """A pooled connection died before any byte of the answer: safe to retry."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the upstream is, parsed once from its URL."""

    host: str
    port: int
    ssl: bool
    host_header: bytes

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http:// or https:// URL, got {url!r}")
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        return cls(parts.hostname, port, secure, parts.netloc.encode())


class UpstreamResponse:
    """Status and headers at once; the body as it arrives (``chunks``) or whole (``read``)."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status = 0
        self.reason = b""
        self.headers: Headers = []
        self.content_length: int | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._complete = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def complete(self) -> bool:
        return self._complete

    def _feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > _READ_HIGH_WATER:
            self._connection.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self._complete = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def chunks(self, timeout: float) -> AsyncIterator[bytes]:
        """Body chunks as they arrive; ``timeout`` bounds each wait for the next one."""
        loop = asyncio.get_running_loop()
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered <= _READ_HIGH_WATER // 2:
                    self._connection.resume_reading()
                yield chunk
            if self._error is not None:
                raise self._error
            if self._complete:
                return
            self._waiter = loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            except TimeoutError:
                raise UpstreamTimeout(f"no data from the upstream for {timeout:g}s") from None
            finally:
                self._waiter = None

    async def read(self, timeout: float) -> bytes:
        """The whole body."""
        if self._complete and self._error is None:  # usual for small answers: no waiting
            body = b"".join(self._chunks)
            self._chunks.clear()
            self._buffered = 0
            return body
        return b"".join([chunk async for chunk in self.chunks(timeout)])

    def release(self) -> None:
        """Return the connection to the pool if the exchange finished cleanly, else close it."""
        self._connection.release(self)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; httptools finds where each response ends."""

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._response: UpstreamResponse | None = None
        self._headers_ready: asyncio.Future[None] | None = None
        self._interim = False
        self._seen_bytes = False
        self._keep_alive = False
        self._head = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.closed = False
        self.reused = False

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check.
        self._transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self._seen_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._abort(UpstreamError(f"malformed response from the upstream: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._can_write.set()
        response = self._response
        if response is None or response.complete:
            return
        if self._headers_ready is not None and self._headers_ready.done() and self._eof_ends():
            response._finish()  # a close-delimited body ends here
            return
        if not self._seen_bytes and self.reused:
            error: UpstreamError = _StaleConnection("pooled connection was closed by the upstream")
        else:
            error = UpstreamError(f"upstream closed the connection mid-response ({exc or 'EOF'})")
        self._abort(error)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- httptools callbacks --------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        if self._response is not None:
            self._response.reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._response is not None and not self._interim:
            self._response.headers.append((name, value))

    def on_headers_complete(self) -> None:
        response = self._response
        if response is None:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # 1xx interim answers (100 Continue, 103 Early Hints) are not the response.
            self._interim = True
            response.headers.clear()
            return
        response.status = status
        response.content_length = _content_length(response.headers)
        self._keep_alive = self._parser.should_keep_alive() and not self._head
        if self._headers_ready is not None and not self._headers_ready.done():
            self._headers_ready.set_result(None)
        if self._head:
            response._finish()  # a HEAD answer announces a length it does not send

    def on_body(self, body: bytes) -> None:
        if self._response is not None and body and not self._head:
            self._response._feed(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._response is not None:
            self._keep_alive = self._keep_alive and self._parser.should_keep_alive()
            self._response._finish()

    # -- use ------------------------------------------------------------------------------

    def pause_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    def _eof_ends(self) -> bool:
        response = self._response
        return (
            response is not None
            and response.content_length is None
            and not any(n.lower() == b"transfer-encoding" for n, _ in response.headers)
        )

    def _abort(self, error: UpstreamError) -> None:
        if self._headers_ready is not None and not self._headers_ready.done():
            self._headers_ready.set_exception(error)
        if self._response is not None:
            self._response._fail(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    async def _write(self, data: bytes) -> None:
        if self.closed or self._transport is None:
            raise _StaleConnection("connection closed before the request was sent")
        self._transport.write(data)
        if not self._can_write.is_set():
            await self._can_write.wait()

    async def send(
        self,
        head: bytes,
        body: bytes | AsyncIterator[bytes],
        *,
        chunked: bool,
        is_head: bool,
        timeout: float,
    ) -> UpstreamResponse:
        """Write the request, then wait up to ``timeout`` for the answer's status and headers."""
        loop = asyncio.get_running_loop()
        self._response = UpstreamResponse(self)
        self._headers_ready = loop.create_future()
        self._seen_bytes = False
        self._head = is_head
        if isinstance(body, bytes):
            await self._write(head + body)
        else:
            await self._write(head)
            async for chunk in body:
                if not chunk:
                    continue
                await self._write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                await self._write(b"0\r\n\r\n")
        # A timer rather than wait_for: this await is on every request's path, and wait_for
        # costs two extra turns of the event loop.
        ready = self._headers_ready
        timer = loop.call_later(timeout, _expire, ready, timeout)
        try:
            await ready
        finally:
            timer.cancel()
        return self._response

    def release(self, response: UpstreamResponse) -> None:
        reusable = response.complete and self._keep_alive and not self.closed
        if response is self._response and reusable:
            self._response = None
            self._headers_ready = None
            self._pool._give_back(self)
        else:
            self.close()


class UpstreamPool:
    """Keep-alive connections to one origin, reused most-recent first.

    >>> pool = UpstreamPool("http://127.0.0.1:8080", connect_timeout=2, read_timeout=30)
    """

    def __init__(
        self, url: str, *, connect_timeout: float, read_timeout: float, max_idle: int = 128
    ) -> None:
        self.origin = Origin.parse(url)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._max_idle = max_idle
        self._idle: list[_Connection] = []
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self.origin.ssl else None

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: Headers,
        body: bytes | AsyncIterator[bytes],
        *,
        content_length: int | None = None,
    ) -> UpstreamResponse:
        """Send one request; the caller must ``release()`` the response when done with it.

        ``headers`` must already be free of hop-by-hop fields and of Content-Length and
        Transfer-Encoding, which this method writes from ``body``/``content_length``.
        """
        lines = [b"%s %s HTTP/1.1\r\n" % (method, target)]
        if not any(name.lower() == b"host" for name, _ in headers):
            lines.append(b"Host: %s\r\n" % self.origin.host_header)
        lines.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
        chunked = False
        if isinstance(body, bytes):
            if body or method not in (b"GET", b"HEAD", b"DELETE", b"OPTIONS"):
                lines.append(b"Content-Length: %d\r\n" % len(body))
        elif content_length is not None:
            lines.append(b"Content-Length: %d\r\n" % content_length)
        else:
            chunked = True
            lines.append(b"Transfer-Encoding: chunked\r\n")
        lines.append(b"\r\n")
        head = b"".join(lines)
        is_head = method == b"HEAD"
        # A pooled connection the upstream closed while idle fails before any answer byte;
        # retrying then is safe (nothing was processed) but only if the body can be re-sent.
        for _attempt in range(3):
            connection = await self._connection()
            try:
                return await connection.send(
                    head, body, chunked=chunked, is_head=is_head, timeout=self.read_timeout
                )
            except _StaleConnection:
                connection.close()
                if not isinstance(body, bytes):
                    raise UpstreamError("upstream closed the connection while streaming") from None
            except BaseException:
                connection.close()
                raise
        raise UpstreamError("upstream keeps closing connections before answering")

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                connection.reused = True
                return connection
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Connection(self), self.origin.host, self.origin.port, ssl=self._ssl
                )
        except TimeoutError:
            raise UpstreamError(
                f"connecting to the upstream {self.origin.host}:{self.origin.port} timed out"
            ) from None
        except OSError as error:
            raise UpstreamError(
                f"cannot connect to the upstream {self.origin.host}:{self.origin.port}: "
                f"{error.strerror or error}"
            ) from None
        return protocol

    def _give_back(self, connection: _Connection) -> None:
        if len(self._idle) < self._max_idle:
            self._idle.append(connection)
        else:
            connection.close()

    async def probe(self) -> bool:
        """Whether a TCP connection to the upstream can be opened now (readiness)."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that arrives as
        # the connection lands, and shutdown would wait on the readiness loop for ever.
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, writer = await asyncio.open_connection(
                    self.origin.host, self.origin.port, ssl=self._ssl
                )
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def _expire(ready: asyncio.Future[None], timeout: float) -> None:
    if not ready.done():
        ready.set_exception(UpstreamTimeout(f"the upstream did not answer within {timeout:g}s"))


def _content_length(headers: Headers) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
