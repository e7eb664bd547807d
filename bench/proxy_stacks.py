"""Which HTTP stack for the sidecar: pass-through proxies built on each, side by side.

Each candidate is the smallest proxy its stack allows (read the body, forward it, return the
answer; no capture), run as its own process in front of the same upstream, loaded with wrk
(32 connections). Printed: requests/s and the ratio to calling the upstream directly.

  aiohttp        aiohttp server + aiohttp client
  uvicorn        uvicorn (httptools, uvloop) ASGI server + aiohttp client
  granian        granian ASGI server + aiohttp client (skipped unless granian is installed)
  modeltap       aiohttp server + modeltap's httptools client (collector/upstream.py)

Run: .venv/bin/python bench/proxy_stacks.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- the candidates (run in child processes) ---------------------------------------------


def serve_aiohttp(port: int, upstream: str, client: str) -> None:
    import aiohttp
    import uvloop
    from aiohttp import web

    from collector.upstream import UpstreamPool

    session: aiohttp.ClientSession | None = None
    pool = UpstreamPool(upstream, connect_timeout=5, read_timeout=30)

    async def with_aiohttp(request: web.BaseRequest) -> web.Response:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession(auto_decompress=False)
        body = await request.read()
        async with session.request(
            request.method, upstream + request.raw_path, data=body
        ) as answer:
            data = await answer.read()
            return web.Response(status=answer.status, body=data)

    async def with_ours(request: web.BaseRequest) -> web.Response:
        body = await request.read()
        answer = await pool.request(request.method.encode(), request.raw_path.encode(), [], body)
        data = await answer.read(30)
        answer.release()
        return web.Response(status=answer.status, body=data)

    async def main() -> None:
        handler = with_ours if client == "modeltap" else with_aiohttp
        runner = web.ServerRunner(web.Server(handler, access_log=None))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    uvloop.run(main())


def asgi_app(upstream: str) -> Any:
    import aiohttp

    state: dict[str, aiohttp.ClientSession] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            return
        session = state.get("s") or state.setdefault("s", aiohttp.ClientSession())
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        target = scope["raw_path"].decode() + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        async with session.request(scope["method"], upstream + target, data=body) as answer:
            data = await answer.read()
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-length", str(len(data)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return app


def serve_uvicorn(port: int, upstream: str) -> None:
    import uvicorn

    uvicorn.run(
        asgi_app(upstream),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


def serve_granian(port: int, upstream: str) -> None:
    from granian.server.embed import Server  # type: ignore[import-not-found,unused-ignore]

    server = Server(asgi_app(upstream), address="127.0.0.1", port=port)
    asyncio.run(server.serve())


# -- the measurement ---------------------------------------------------------------------


def start(arguments: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, *arguments], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{arguments} did not start")


def wrk(port: int, seconds: int) -> float:
    output = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", f"http://127.0.0.1:{port}/ping"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(
        next(line.split()[1] for line in output.splitlines() if line.startswith("Requests/sec:"))
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        if arguments.serve in ("aiohttp", "modeltap"):
            serve_aiohttp(arguments.port, arguments.upstream, arguments.serve)
        elif arguments.serve == "uvicorn":
            serve_uvicorn(arguments.port, arguments.upstream)
        else:
            serve_granian(arguments.port, arguments.upstream)
        return

    upstream_port = free_port()
    upstream = start(
        ["-m", "tests.collector.model_server", "--port", str(upstream_port)], upstream_port
    )
    try:
        wrk(upstream_port, 1)
        direct = wrk(upstream_port, arguments.seconds)
        print(f"direct (uvicorn model server): {direct:8.0f} req/s")
        for name in ("aiohttp", "uvicorn", "granian", "modeltap"):
            if name == "granian" and importlib.util.find_spec("granian") is None:
                print(f"{name:>14}: skipped (pip install granian to include it)")
                continue
            port = free_port()
            proxy = start(
                [
                    __file__,
                    "--serve",
                    name,
                    "--port",
                    str(port),
                    "--upstream",
                    f"http://127.0.0.1:{upstream_port}",
                ],
                port,
            )
            try:
                wrk(port, 1)
                rate = wrk(port, arguments.seconds)
            finally:
                proxy.terminate()
                proxy.wait()
            print(f"{name:>14}: {rate:8.0f} req/s  ({rate / direct:.2f}x direct)")
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    main()
