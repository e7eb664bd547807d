"""A model server that answers however a test needs, down to the bytes on the socket.

The path picks the answer: ``/cut`` promises 1000 bytes and sends 17, ``/status/N`` answers N,
``/header`` sends a UTF-8 header value, anything else a JSON prediction per instance. Each
request is recorded (method, path, headers as bytes) so tests can see what the sidecar sent.
"""

from __future__ import annotations

import json
import socketserver
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Seen:
    method: bytes
    path: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class OddUpstream:
    seen: list[Seen] = field(default_factory=list)
    server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> OddUpstream:
        upstream = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                head = self.rfile.readline().split()
                if len(head) < 2:
                    return
                headers: list[tuple[bytes, bytes]] = []
                while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.partition(b":")
                    headers.append((name.strip(), value.strip()))
                length = next((int(v) for n, v in headers if n.lower() == b"content-length"), 0)
                body = self.rfile.read(length) if length else b""
                upstream.seen.append(Seen(head[0], head[1], headers, body))
                self.wfile.write(answer(head[1], body))

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def answer(path: bytes, body: bytes) -> bytes:
    if path.startswith(b"/cut"):
        return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b'{"predictions": [1'
    if path.startswith(b"/status/"):
        code = int(path.rsplit(b"/", 1)[1])
        return _response(code, b'{"error": "as asked"}')
    if path.startswith(b"/header"):
        return _response(200, b"{}", extra=[(b"X-Note", "café ☕".encode())])
    try:
        request: Any = json.loads(body or b"{}")
    except ValueError:
        request = {}
    rows = request.get("instances", [[0]]) if isinstance(request, dict) else [[0]]
    count = len(rows) if isinstance(rows, list) else 1
    return _response(200, json.dumps({"predictions": [1] * count}).encode())


def _response(code: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    lines = [b"HTTP/1.1 %d X" % code, b"Content-Type: application/json"]
    lines += [b"%s: %s" % pair for pair in extra or []]
    lines += [b"Content-Length: %d" % len(body), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
