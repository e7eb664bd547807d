"""The upstream client against raw servers that answer with exactly the bytes under test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from collector.upstream import UpstreamError, UpstreamPool, UpstreamTimeout

Handler = Callable[["RawServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A TCP server that records each request head and runs ``handler`` per connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(self, reader, writer)
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                return await reader.readexactly(int(line.split(b":")[1]))
        if b"transfer-encoding: chunked" in head.lower():
            body = b""
            while True:
                size = int((await reader.readline()).strip(), 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    return body
                body += chunk[:-2]
        return b""


def serve(*answers: bytes, keep_open: bool = True) -> Handler:
    """Answer successive requests on a connection with the given raw responses."""

    async def handler(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for answer in answers:
            await server.read_request(reader)
            writer.write(answer)
            await writer.drain()
        if keep_open:
            await reader.read()  # until the client closes

    return handler


async def start(handler: Handler) -> RawServer:
    return await RawServer(handler).__aenter__()


@pytest.fixture
async def pool_for() -> AsyncIterator[Callable[[str], UpstreamPool]]:
    pools: list[UpstreamPool] = []

    def make(url: str, read_timeout: float = 2.0) -> UpstreamPool:
        pool = UpstreamPool(url, connect_timeout=1, read_timeout=read_timeout)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


async def test_content_length_bodies_and_connection_reuse(
    pool_for: Callable[..., UpstreamPool],
) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello"
    server = await start(serve(answer, answer, answer))
    pool = pool_for(server.url)
    for _ in range(3):
        response = await pool.request(b"POST", b"/p?q=1", [(b"Host", b"h")], b"{}")
        assert (response.status, response.reason) == (200, b"OK")
        assert response.headers == [(b"Content-Length", b"5"), (b"X-A", b"1"), (b"X-A", b"2")]
        assert await response.read(1) == b"hello"
        response.release()
    assert server.connections == 1
    assert server.heads[0].startswith(b"POST /p?q=1 HTTP/1.1\r\nHost: h\r\n")
    assert b"Content-Length: 2\r\n" in server.heads[0]
    await server.__aexit__()


async def test_chunked_bodies_arrive_chunk_by_chunk(pool_for: Callable[..., UpstreamPool]) -> None:
    gate = asyncio.Event()

    async def handler(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await gate.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()

    server = await start(handler)
    response = await pool_for(server.url).request(b"GET", b"/", [], b"")
    chunks = response.chunks(2)
    assert await chunks.__anext__() == b"first"  # before the upstream has finished
    gate.set()
    assert [chunk async for chunk in chunks] == [b"second"]
    assert response.complete
    await server.__aexit__()


async def test_close_delimited_bodies_end_at_eof(pool_for: Callable[..., UpstreamPool]) -> None:
    server = await start(serve(b"HTTP/1.0 200 OK\r\n\r\nall of it", keep_open=False))
    pool = pool_for(server.url)
    response = await pool.request(b"GET", b"/", [], b"")
    assert await response.read(2) == b"all of it"
    response.release()
    assert pool._idle == []  # not reusable
    await server.__aexit__()


async def test_interim_answers_are_skipped_and_no_body_statuses_complete(
    pool_for: Callable[..., UpstreamPool],
) -> None:
    server = await start(
        serve(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nETag: e\r\n\r\n",
        )
    )
    pool = pool_for(server.url)
    response = await pool.request(b"POST", b"/", [], b"x")
    assert (response.status, response.headers) == (201, [(b"Content-Length", b"2")])
    assert await response.read(1) == b"ok"
    response.release()
    for status in (204, 304):
        response = await pool.request(b"GET", b"/", [], b"")
        assert (response.status, await response.read(1)) == (status, b"")
        response.release()
    assert server.connections == 1
    await server.__aexit__()


async def test_head_answers_announce_a_length_they_do_not_send(
    pool_for: Callable[..., UpstreamPool],
) -> None:
    server = await start(serve(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"))
    response = await pool_for(server.url).request(b"HEAD", b"/", [], b"")
    assert (response.status, response.content_length) == (200, 1234)
    assert await response.read(1) == b""
    response.release()
    await server.__aexit__()


async def test_streamed_request_bodies_are_chunked_or_sized(
    pool_for: Callable[..., UpstreamPool],
) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    received: list[bytes] = []

    async def handler(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for _ in range(2):
            received.append(await server.read_request(reader))
            writer.write(ok)
            await writer.drain()
        await reader.read()

    server = await start(handler)
    pool = pool_for(server.url)

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"ab", b"", b"cde"):
            yield part

    (await pool.request(b"POST", b"/", [], parts())).release()
    (await pool.request(b"POST", b"/", [], parts(), content_length=5)).release()
    assert received == [b"abcde", b"abcde"]
    assert b"Transfer-Encoding: chunked" in server.heads[0]
    assert b"Content-Length: 5" in server.heads[1]
    await server.__aexit__()


async def test_a_pooled_connection_closed_by_the_upstream_is_retried(
    pool_for: Callable[..., UpstreamPool],
) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def handler(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.read_request(reader)
        writer.write(answer)
        await writer.drain()
        # Idle keep-alive timeout: read the next request's bytes, then hang up unanswered.
        await reader.read(1)

    server = await start(handler)
    pool = pool_for(server.url)
    for _ in range(3):
        response = await pool.request(b"POST", b"/", [], b"body")
        assert await response.read(1) == b"ok"
        response.release()
    assert server.connections == 3
    await server.__aexit__()


async def test_failures_are_typed(pool_for: Callable[..., UpstreamPool]) -> None:
    async def silent(
        _server: RawServer, reader: asyncio.StreamReader, _writer: asyncio.StreamWriter
    ) -> None:
        await reader.read()

    server = await start(silent)
    with pytest.raises(UpstreamTimeout, match=r"did not answer within 0\.3s"):
        await pool_for(server.url, read_timeout=0.3).request(b"GET", b"/", [], b"")
    await server.__aexit__()

    garbage = await start(serve(b"NOT HTTP AT ALL\r\n\r\n"))
    with pytest.raises(UpstreamError, match="malformed response"):
        await pool_for(garbage.url).request(b"GET", b"/", [], b"")
    await garbage.__aexit__()

    cut = await start(serve(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", keep_open=False))
    response = await pool_for(cut.url).request(b"GET", b"/", [], b"")
    with pytest.raises(UpstreamError, match="mid-response"):
        await response.read(1)
    await cut.__aexit__()

    with pytest.raises(UpstreamError, match=r"cannot connect to the upstream 127\.0\.0\.1:1"):
        await pool_for("http://127.0.0.1:1").request(b"GET", b"/", [], b"")


async def test_slow_bodies_time_out_between_chunks(pool_for: Callable[..., UpstreamPool]) -> None:
    server = await start(serve(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
    response = await pool_for(server.url, read_timeout=0.2).request(b"GET", b"/", [], b"")
    with pytest.raises(UpstreamTimeout, match=r"no data from the upstream for 0\.2s"):
        await response.read(0.2)
    response.release()
    await server.__aexit__()


async def test_probe_says_whether_the_upstream_listens(
    pool_for: Callable[..., UpstreamPool],
) -> None:
    server = await start(serve())
    assert await pool_for(server.url).probe()
    await server.__aexit__()
    assert not await pool_for("http://127.0.0.1:1").probe()


async def test_probe_is_cancelled_even_when_the_connection_lands_at_that_moment(
    pool_for: Callable[..., UpstreamPool], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Shutdown cancels the readiness loop. If the cancel arrives in the same loop turn as
    # the connection, asyncio.wait_for on 3.11 returns the connection and swallows the
    # cancel, and the loop (and the sidecar's exit) never ends. The probe must stay
    # cancellable however the two interleave.
    server = await start(serve())
    probing: asyncio.Task[bool] | None = None
    opened = asyncio.open_connection

    async def connect_then_cancelled(
        *args: object, **kwargs: object
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        connection = await opened(*args, **kwargs)  # type: ignore[arg-type]
        assert probing is not None
        probing.cancel()
        return connection

    monkeypatch.setattr(asyncio, "open_connection", connect_then_cancelled)
    probing = asyncio.create_task(pool_for(server.url).probe())
    await asyncio.wait([probing])
    assert probing.cancelled()
    await server.__aexit__()
