"""The sidecar as a real process in front of the real model server.

What callers get must be what the model server sent, byte for byte and as it arrives; what
is captured must land in the store.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import socket
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collector.conftest import SidecarProcess, events_in, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("capture") / "capture.db"


@pytest.fixture(scope="module")
def sidecar(
    tmp_path_factory: pytest.TempPathFactory, model_server: str, database: Path
) -> Iterator[SidecarProcess]:
    process = SidecarProcess(
        tmp_path_factory.mktemp("sidecar"), model_server, f"sqlite:///{database}"
    ).start()
    yield process
    assert process.stop() == 0


def call(
    base: str,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[http.client.HTTPResponse, bytes]:
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    connection.request(method, target, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def captured(database: Path, request_id: str, seconds: float = 10.0) -> dict[str, Any]:
    """The stored request (and its rows) once the sidecar has flushed it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if database.exists():
            try:
                stored = events_in(database)
            except sqlite3.OperationalError:  # the sidecar has not created its tables yet
                time.sleep(0.05)
                continue
            found = [r for r in stored["requests"] if r["request_id"] == request_id]
            if found:
                rows = [r for r in stored["rows"] if r["request_id"] == request_id]
                return {"request": found[0], "rows": rows}
        time.sleep(0.05)
    raise AssertionError(f"request {request_id} was never captured")


def post_json(base: str, target: str, payload: Any, **headers: str) -> tuple[Any, Any]:
    response, data = call(
        base,
        "POST",
        target,
        json.dumps(payload).encode(),
        {"Content-Type": "application/json", **headers},
    )
    return response, json.loads(data)


IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def test_kserve_v1_calls_are_answered_and_captured(sidecar: SidecarProcess, database: Path) -> None:
    response, answer = post_json(
        sidecar.url,
        "/v1/models/iris:predict",
        {"instances": IRIS_ROWS},
        **{"X-Request-ID": "kserve-1"},
    )
    assert response.status == 200
    assert answer == {"predictions": [0, 2]}
    assert response.getheader("X-Request-ID") == "kserve-1"
    stored = captured(database, "kserve-1")
    assert stored["request"]["model"] == "iris"
    assert stored["request"]["status_code"] == 200
    assert stored["request"]["capture_note"] is None
    assert stored["request"]["latency_ms"] >= stored["request"]["upstream_latency_ms"] > 0
    assert [row["features"]["petal_length"] for row in stored["rows"]] == [1.4, 5.2]
    assert [row["prediction"] for row in stored["rows"]] == [0, 2]


def test_open_inference_v2_calls_name_their_version(
    sidecar: SidecarProcess, database: Path
) -> None:
    payload = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [2, 4],
                "datatype": "FP32",
                "data": [v for row in IRIS_ROWS for v in row],
            }
        ]
    }
    response, answer = post_json(
        sidecar.url, "/v2/models/iris/versions/3/infer", payload, **{"X-Request-ID": "oip-1"}
    )
    assert response.status == 200
    assert answer["outputs"][0]["data"] == [0, 2]
    stored = captured(database, "oip-1")
    assert (stored["request"]["model"], stored["request"]["version"]) == ("iris", "3")
    assert stored["rows"][0]["features"] == dict(
        zip(
            ["sepal_length", "sepal_width", "petal_length", "petal_width"],
            IRIS_ROWS[0],
            strict=True,
        )
    )
    assert [row["prediction"] for row in stored["rows"]] == [0, 2]


def test_a_request_id_is_made_when_missing_and_passed_upstream(sidecar: SidecarProcess) -> None:
    response, _ = call(sidecar.url, "POST", "/echo/x", b"{}")
    made = response.getheader("X-Request-ID")
    assert made
    assert len(made) == 32
    seen = json.loads(base64.b64decode(response.getheader("X-Echo-Headers") or ""))
    assert ["x-request-id", made] in [[k.lower(), v] for k, v in seen]


TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
VALUE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
SEGMENT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    segments=st.lists(SEGMENT, max_size=3),
    query=st.lists(st.tuples(SEGMENT, SEGMENT), max_size=3),
    headers=st.dictionaries(TOKEN.map(lambda t: f"x-t-{t}"), VALUE, max_size=5),
    body=st.binary(max_size=70_000),
)
def test_anything_comes_back_byte_for_byte(
    sidecar: SidecarProcess,
    method: str,
    segments: list[str],
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
) -> None:
    path = "/echo/" + "/".join(urllib.parse.quote(s, safe="") for s in segments)
    target = path + "?" + urllib.parse.urlencode(query)
    response, data = call(sidecar.url, method, target, body if method != "GET" else None, headers)
    assert response.status == 200
    assert data == (body if method != "GET" else b"")
    assert base64.b64decode(response.getheader("X-Echo-Target") or "") == target.encode()
    seen = {
        k.lower(): v
        for k, v in json.loads(base64.b64decode(response.getheader("X-Echo-Headers") or ""))
    }
    for name, value in headers.items():
        assert seen[name] == value


def test_server_sent_events_are_forwarded_as_they_arrive(sidecar: SidecarProcess) -> None:
    # The upstream sends its first event and then holds the rest until the gate is opened
    # below. A sidecar that buffered the stream could not hand over the first event before
    # the gate opens: readline would block until the socket's timeout and the test fail.
    connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=20)
    connection.request("GET", "/stream?n=4&interval=0&gate=sse-order")
    response = connection.getresponse()
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    first = response.readline()
    assert first == b"data: event 0\n"
    upstream = f"http://127.0.0.1:{sidecar_upstream_port(sidecar)}"
    released, _ = call(upstream, "POST", "/release/sse-order")
    assert released.status == 200
    rest = response.read()
    connection.close()
    assert rest == b"\n" + b"".join(f"data: event {n}\n\n".encode() for n in range(1, 4))


def test_fifty_megabytes_each_way(sidecar: SidecarProcess) -> None:
    size = 50 * 2**20
    upload = bytes(range(256)) * (size // 256)
    response, data = call(
        sidecar.url, "POST", "/echo/big", upload, {"Content-Type": "application/octet-stream"}
    )
    assert response.status == 200
    assert hashlib.sha256(data).digest() == hashlib.sha256(upload).digest()
    response, data = call(sidecar.url, "GET", f"/big?size={size}")
    _, direct = call(
        f"http://127.0.0.1:{sidecar_upstream_port(sidecar)}", "GET", f"/big?size={size}"
    )
    assert len(data) == size
    assert data == direct


def sidecar_upstream_port(sidecar: SidecarProcess) -> int:
    return urllib.parse.urlsplit(sidecar.upstream).port or 80


def test_gzip_passes_untouched_and_the_captured_copy_is_decoded(
    sidecar: SidecarProcess,
    database: Path,
) -> None:
    _, direct_body = call(sidecar.upstream, "GET", "/gzip")
    response, data = call(sidecar.url, "GET", "/gzip", headers={"Accept-Encoding": "gzip"})
    assert response.getheader("Content-Encoding") == "gzip"
    assert data == direct_body
    assert json.loads(gzip.decompress(data)) == {"predictions": [1, 0]}

    records = json.dumps([{"sepal_length": 1.0}, {"sepal_length": 2.0}]).encode()
    response, data = call(
        sidecar.url,
        "POST",
        "/gzip",
        records,
        {"Content-Type": "application/json", "X-Request-ID": "gz-answer"},
    )
    assert response.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(data) == records
    answered = captured(database, "gz-answer")  # a gzip answer, decoded for capture only
    assert [row["prediction"] for row in answered["rows"]] == [
        {"sepal_length": 1.0},
        {"sepal_length": 2.0},
    ]

    body = gzip.compress(json.dumps({"sepal_length": 1.0}).encode())
    response, data = call(
        sidecar.url,
        "POST",
        "/echo/gz",
        body,
        {"Content-Encoding": "gzip", "Content-Type": "application/json", "X-Request-ID": "gz-1"},
    )
    assert data == body
    stored = captured(database, "gz-1")
    assert stored["request"]["capture_note"] is None
    assert stored["rows"][0]["features"] == {"sepal_length": 1.0}


@pytest.mark.parametrize(
    ("body", "headers", "note"),
    [
        (b"not json at all", {}, "unparsed: request body is not JSON"),
        (b'{"x": "\xff\xfe"}', {}, "unparsed: request body is not UTF-8"),
        (
            gzip.compress(b'{"a": 1}')[:-4],
            {"Content-Encoding": "gzip"},
            "unparsed: request body is truncated gzip data",
        ),
        (b'{"a": [1, 2', {}, "unparsed: request body is not JSON"),
    ],
)
def test_bad_bodies_pass_through_and_are_noted(
    sidecar: SidecarProcess,
    database: Path,
    body: bytes,
    headers: dict[str, str],
    note: str,
) -> None:
    request_id = "bad-" + hashlib.md5(body).hexdigest()[:8]
    response, data = call(
        sidecar.url, "POST", "/echo/bad", body, {"X-Request-ID": request_id, **headers}
    )
    assert (response.status, data) == (200, body)
    stored = captured(database, request_id)
    assert stored["request"]["capture_note"].startswith(note)
    assert stored["rows"] == []


def test_error_statuses_pass_through_and_are_recorded(
    sidecar: SidecarProcess, database: Path
) -> None:
    response, data = call(sidecar.url, "POST", "/status/503", b"{}", {"X-Request-ID": "e503"})
    assert (response.status, json.loads(data)) == (503, {"status": 503})
    stored = captured(database, "e503")
    assert stored["request"]["status_code"] == 503
    assert stored["request"]["capture_note"] == "no_prediction: status 503"


def test_head_keeps_the_announced_length(sidecar: SidecarProcess) -> None:
    response, data = call(sidecar.url, "HEAD", "/big?size=12345")
    assert (response.status, data) == (200, b"")
    assert response.getheader("Content-Length") == "12345"


def test_chunked_uploads_and_expect_continue(sidecar: SidecarProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
    connection.request(
        "POST", "/echo/chunks", body=iter([b"part one, ", b"part two"]), encode_chunked=True
    )
    response = connection.getresponse()
    assert response.read() == b"part one, part two"
    connection.close()

    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as raw:
        raw.sendall(
            b"POST /echo/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        assert raw.recv(100).startswith(b"HTTP/1.1 100 Continue")
        raw.sendall(b"hello")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"\r\n\r\nhello")


def test_upstream_down_is_a_502_and_slow_is_a_504(sidecar_factory: Any, tmp_path: Path) -> None:
    down = sidecar_factory(upstream=f"http://127.0.0.1:{free_port()}")
    errors_502 = 'modeltap_sidecar_upstream_errors_total{code="502",model="iris",version=""}'
    before = down.metric(errors_502)  # start-up's own probe through the proxy counts too
    response, data = call(
        down.url, "POST", "/v1/models/iris:predict", b"{}", {"X-Request-ID": "down-1"}
    )
    assert response.status == 502
    assert json.loads(data)["error"] == "upstream unreachable"
    assert json.loads(data)["request_id"] == "down-1"

    slow = sidecar_factory(sidecar={"upstream_timeout": "300ms"})
    response, data = call(
        slow.url, "GET", "/ping?delay_ms=2000", headers={"X-Request-ID": "slow-1"}
    )
    assert response.status == 504
    assert "did not answer within 0.3s" in json.loads(data)["detail"]
    assert down.metric(errors_502) == before + 1
    database = tmp_path / "capture.db"
    assert captured(database, "down-1")["request"]["error"] == "upstream_unreachable"
    assert captured(database, "slow-1")["request"]["error"] == "upstream_timeout"
    assert captured(database, "slow-1")["request"]["status_code"] == 504
