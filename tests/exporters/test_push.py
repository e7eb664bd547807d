"""`monitor dashboards push` against a local HTTP endpoint that checks every request against
Grafana's documented HTTP API (folders, dashboards): method, path, headers and body shape.
No real Grafana runs here; see the README."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from monitor.cli import cli

TOKEN = "glsa_test_token"


class FakeGrafana:
    """Folders and dashboards kept in memory, as Grafana's /api/folders and /api/dashboards/db."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Any]] = {}
        self.boards: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.problems: list[str] = []

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        self.requests.append((method, path))
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "Unauthorized"}
        if method == "GET" and path.startswith("/api/folders/"):
            uid = path.removeprefix("/api/folders/")
            found = self.folders.get(uid)
            return (200, found) if found else (404, {"message": "folder not found"})
        if method == "POST" and path == "/api/folders":
            return self.create_folder(self.json(headers, body))
        if method == "POST" and path == "/api/dashboards/db":
            return self.save(self.json(headers, body))
        self.problems.append(f"undocumented request {method} {path}")
        return 404, {"message": "not found"}

    def json(self, headers: Any, body: bytes) -> Any:
        if not headers.get("Content-Type", "").startswith("application/json"):
            self.problems.append(f"Content-Type {headers.get('Content-Type')!r}")
        return json.loads(body)

    def create_folder(self, body: Any) -> tuple[int, Any]:
        # POST /api/folders: {"uid"?: str, "title": str, "parentUid"?: str}
        if not isinstance(body.get("title"), str) or set(body) - {"uid", "title", "parentUid"}:
            self.problems.append(f"folder body {body}")
            return 400, {"message": "bad folder"}
        if body["uid"] in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "id": 7}
        return 200, self.folders[body["uid"]]

    def save(self, body: Any) -> tuple[int, Any]:
        # POST /api/dashboards/db: {"dashboard": {...}, "folderUid"?, "message"?, "overwrite"?}
        allowed = {"dashboard", "folderUid", "folderId", "message", "overwrite"}
        board = body.get("dashboard")
        if set(body) - allowed or not isinstance(board, dict):
            self.problems.append(f"dashboard body keys {sorted(body)}")
            return 400, {"message": "bad dashboard"}
        if board.get("id") is not None or not board.get("uid") or not board.get("title"):
            self.problems.append(f"dashboard {board.get('uid')}: id/uid/title")
        folder = body.get("folderUid")
        if folder is not None and folder not in self.folders:
            return 400, {"message": "folder not found"}
        old = self.boards.get(board["uid"])
        if old is not None and not body.get("overwrite"):
            return 412, {"message": "The dashboard has been changed by someone else"}
        version = (old["version"] + 1) if old else 1
        self.boards[board["uid"]] = {"dashboard": board, "folderUid": folder, "version": version}
        slug = board["title"].lower().replace(" ", "-")
        return 200, {"id": 1, "uid": board["uid"], "url": f"/d/{board['uid']}/{slug}",
                     "status": "success", "version": version, "slug": slug}  # fmt: skip


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, payload = fake.handle(
                self.command, self.path, self.headers, self.rfile.read(length)
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer  # noqa: N815

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def push(url: str, *extra: str, token: str = TOKEN) -> Any:
    return CliRunner().invoke(cli, ["dashboards", "push", "--url", url, "--token", token, *extra])


def test_push_creates_the_folder_once_and_overwrites_dashboards(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    first = push(url, "--folder", "ML Monitoring", "--datasource-uid", "PBFA97CFB590B2093")
    assert first.exit_code == 0, first.output
    second = push(url, "--folder", "ML Monitoring", "--datasource-uid", "PBFA97CFB590B2093")
    assert second.exit_code == 0, second.output
    assert fake.problems == []
    assert list(fake.folders) == ["ml-monitoring"]
    assert fake.requests.count(("POST", "/api/folders")) == 1
    assert fake.requests.count(("POST", "/api/dashboards/db")) == 8
    assert sorted(fake.boards) == [
        "modeltap-drift", "modeltap-health", "modeltap-overview", "modeltap-performance",
    ]  # fmt: skip
    assert {saved["version"] for saved in fake.boards.values()} == {2}
    assert "modeltap-overview: version 2 /d/modeltap-overview/model-overview" in second.output
    for saved in fake.boards.values():
        assert saved["folderUid"] == "ml-monitoring"
        text = json.dumps(saved["dashboard"])
        assert "modeltap-prometheus" not in text
        assert '"uid": "PBFA97CFB590B2093"' in text


def test_without_a_datasource_uid_the_generated_one_stays(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    result = push(url)
    assert result.exit_code == 0, result.output
    assert fake.problems == []
    assert all(saved["folderUid"] is None for saved in fake.boards.values())
    assert "modeltap-prometheus" in json.dumps(fake.boards["modeltap-drift"]["dashboard"])


def test_a_wrong_token_is_a_clear_error(grafana: tuple[FakeGrafana, str]) -> None:
    _, url = grafana
    result = push(url, token="wrong")
    assert result.exit_code == 2
    assert "refused the token (401)" in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_grafana_exits_3() -> None:
    result = push("http://127.0.0.1:9")
    assert result.exit_code == 3, result.output
    assert "cannot reach Grafana at http://127.0.0.1:9" in result.output


def test_a_missing_grafana_client_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "grafana_client", None)
    result = push("http://127.0.0.1:9")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: monitor dashboards push needs the optional package 'grafana_client'; "
        "install it with: pip install 'modeltap[grafana]'"
    )
