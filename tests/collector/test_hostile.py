"""The sidecar under odd and hostile input, on the real SQLite and PostgreSQL sinks.

Nothing a caller or a model server sends may stop capture for the others: every call that
reached the model is stored (an id too long or unprintable under a stable stand-in) or
counted with its reason, and the traffic after it is stored as usual.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from modeltap.schema import MAX_ID, MAX_NAME, bounded
from tests.collector.conftest import SidecarProcess, events_in
from tests.collector.odd_upstream import OddUpstream

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def upstream() -> Iterator[OddUpstream]:
    server = OddUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def sink(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'capture.db'}"
    from modeltap.store import SqlStore

    url = request.getfixturevalue("postgres_module_database")
    SqlStore.open(url, migrate=True).close()
    return str(url)


@pytest.fixture(scope="module")
def sidecar(
    tmp_path_factory: pytest.TempPathFactory, upstream: OddUpstream, sink: str
) -> Iterator[SidecarProcess]:
    process = SidecarProcess(tmp_path_factory.mktemp("sidecar"), upstream.url, sink).start()
    yield process
    assert process.stop() == 0


def stored(sink: str) -> dict[str, dict[str, Any]]:
    """The stored requests by request id, with their number of prediction rows."""
    if sink.startswith("sqlite"):
        try:
            found = events_in(Path(sink.removeprefix("sqlite:///")))
        except sqlite3.OperationalError:  # the sidecar creates its tables on the first write
            return {}
        rows: dict[str, int] = {}
        for row in found["rows"]:
            rows[row["request_id"]] = rows.get(row["request_id"], 0) + 1
        return {
            r["request_id"]: {**r, "rows": rows.get(r["request_id"], 0)} for r in found["requests"]
        }
    with psycopg.connect(
        sink.replace("+psycopg", ""), autocommit=True, row_factory=dict_row
    ) as connection:
        requests = connection.execute("SELECT * FROM requests").fetchall()
        counts = {
            row["request_id"]: row["rows"]
            for row in connection.execute(
                "SELECT request_id, count(*) AS rows FROM predictions GROUP BY request_id"
            )
        }
    return {r["request_id"]: {**r, "rows": counts.get(r["request_id"], 0)} for r in requests}


def wait_stored(sink: str, request_id: str, seconds: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = stored(sink).get(request_id)
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"request {request_id!r} was never stored")


def raw(port: int, head: bytes, body: bytes = b"") -> tuple[bytes, dict[bytes, bytes], bytes]:
    """Send bytes as they are; the answer's status line, headers and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head + body)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    top, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = top.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}
    return status, headers, rest


def post(
    port: int, path: str, body: bytes, *extra: tuple[bytes, bytes]
) -> tuple[bytes, dict[bytes, bytes], bytes]:
    lines = [b"POST %s HTTP/1.1" % path.encode(), b"Host: x", b"Connection: close"]
    lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    lines += [b"%s: %s" % pair for pair in extra]
    return raw(port, b"\r\n".join(lines) + b"\r\n\r\n", body)


def metric(sidecar: SidecarProcess, name: str) -> list[str]:
    with urllib.request.urlopen(f"{sidecar.metrics_url}/metrics", timeout=5) as response:
        return [line for line in response.read().decode().splitlines() if line.startswith(name)]


BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()


def test_an_id_too_long_for_the_table_never_stops_capture(
    sidecar: SidecarProcess, sink: str
) -> None:
    # Once: the COPY failed, the batch went to the spool, the spool failed its own check on
    # replay, and from then on nothing reached the database, across restarts.
    long_id = "a" * 300
    status, headers, _ = post(
        sidecar.port, "/v1/models/iris:predict", BODY, (b"X-Request-ID", long_id.encode())
    )
    assert status.startswith(b"HTTP/1.1 200")
    assert headers[b"x-request-id"] == long_id.encode()  # the caller's id, untouched
    kept = wait_stored(sink, bounded(long_id, MAX_ID))
    assert kept["rows"] == 1
    long_model = "m" * 200
    post(sidecar.port, f"/v1/models/{long_model}:predict", BODY, (b"X-Request-ID", b"long-model"))
    assert wait_stored(sink, "long-model")["model"] == bounded(long_model, MAX_NAME)
    for n in range(5):
        post(sidecar.port, "/v1/models/iris:predict", BODY, (b"X-Request-ID", b"after-%d" % n))
    for n in range(5):
        assert wait_stored(sink, f"after-{n}")["rows"] == 1
    assert not list(sidecar.spool.glob("*.jsonl"))


def test_an_upstream_that_closes_mid_body_is_a_counted_502_with_the_id(
    sidecar: SidecarProcess, sink: str
) -> None:
    status, headers, body = post(sidecar.port, "/cut", BODY, (b"X-Request-ID", b"cut-1"))
    assert status.startswith(b"HTTP/1.1 502")
    assert headers[b"x-request-id"] == b"cut-1"
    answer = json.loads(body)
    assert (answer["error"], answer["request_id"]) == ("upstream unreachable", "cut-1")
    assert "mid-response" in answer["detail"]
    kept = wait_stored(sink, "cut-1")
    assert (kept["status_code"], kept["error"]) == (502, "upstream_broken")
    assert any(
        'code="502"' in line for line in metric(sidecar, "modeltap_sidecar_upstream_errors_total")
    )


def test_upstream_errors_have_no_series_for_answered_calls(sidecar: SidecarProcess) -> None:
    post(sidecar.port, "/status/200", BODY)
    post(sidecar.port, "/status/500", BODY)
    series = metric(sidecar, "modeltap_sidecar_upstream_errors_total")
    assert not [line for line in series if 'code="200"' in line or 'code="500"' in line]


def test_hundreds_of_request_headers_reach_the_model(
    sidecar: SidecarProcess, upstream: OddUpstream
) -> None:
    many = [(b"X-Extra-%d" % n, b"v") for n in range(300)]
    status, _, _ = post(
        sidecar.port, "/v1/models/iris:predict", BODY, *many, (b"X-Request-ID", b"many-headers")
    )
    assert status.startswith(b"HTTP/1.1 200")
    forwarded = next(s for s in upstream.seen if (b"X-Request-ID", b"many-headers") in s.headers)
    assert sum(name.startswith(b"X-Extra-") for name, _ in forwarded.headers) == 300


def test_non_ascii_header_bytes_survive_both_ways(
    sidecar: SidecarProcess, sink: str, upstream: OddUpstream
) -> None:
    # The model's UTF-8 header value comes back as its bytes (not latin-1 mojibake).
    _, headers, _ = post(sidecar.port, "/header", BODY)
    assert headers[b"x-note"] == "café ☕".encode()
    # A caller's UTF-8 id is echoed as sent.
    _, headers, _ = post(
        sidecar.port, "/v1/models/iris:predict", BODY, (b"X-Request-ID", "réq-1".encode())
    )
    assert headers[b"x-request-id"] == "réq-1".encode()
    # Bytes that are no UTF-8 cannot be written back by the HTTP server: the caller gets the
    # id the call is stored under (the one labels for it use), instead of a mangled one.
    odd = b"caf\xe9-\xff"
    _, headers, _ = post(sidecar.port, "/v1/models/iris:predict", BODY, (b"X-Request-ID", odd))
    echoed = headers[b"x-request-id"].decode()
    assert wait_stored(sink, echoed)["rows"] == 1
    forwarded = next(s for s in upstream.seen if (b"X-Request-ID", odd) in s.headers)
    assert forwarded.path == b"/v1/models/iris:predict"  # the model got the caller's bytes


def test_a_malformed_request_is_one_log_line_not_a_traceback(sidecar: SidecarProcess) -> None:
    before = sidecar.log.read_text()
    for _ in range(3):
        status, _, _ = raw(sidecar.port, b"POST / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        assert status.startswith(b"HTTP/1.0 400") or status.startswith(b"HTTP/1.1 400")
    time.sleep(0.3)
    written = sidecar.log.read_text()[len(before) :]
    assert "Traceback" not in written
    assert written.count("refused a malformed HTTP request") == 1  # then quiet for a minute


# -- the fuzz test --------------------------------------------------------------------------

ids = st.one_of(
    st.text(min_size=1, max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(min_size=1, max_size=300),
)
models = st.one_of(
    st.just("iris"),
    st.text(alphabet=st.characters(blacklist_characters="/:?#%"), min_size=1, max_size=200),
)
bodies = st.one_of(
    st.just(BODY),
    st.binary(max_size=2000),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
        max_leaves=30,
    ).map(lambda v: json.dumps({"instances": [v]}).encode()),
)
answers = st.sampled_from(
    ["/v1/models/{m}:predict", "/cut", "/status/500", "/status/404", "/header"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(request_id=ids, model=models, body=bodies, answer=answers)
def test_fuzz_every_call_is_stored_or_counted_and_normal_traffic_goes_on(
    sidecar: SidecarProcess,
    sink: str,
    request_id: bytes,
    model: str,
    body: bytes,
    answer: str,
) -> None:
    n = uuid.uuid4().hex  # every example's calls are its own
    header_safe = bytes(b for b in request_id if b not in b"\r\n\x00") or b"x"
    # Surrogates stand for bytes that are no UTF-8: percent-encoded, the path carries them.
    path = answer.format(m=urllib.parse.quote(model.encode("utf-8", "surrogatepass"), safe=""))
    _, headers, _ = post(
        sidecar.port, path, body, (b"X-Request-ID", header_safe + b"-" + n.encode())
    )
    if b"x-request-id" in headers:  # the call got past HTTP parsing: it must be kept
        stored_as = bounded(headers[b"x-request-id"].decode("utf-8", "surrogateescape"), MAX_ID)
        wait_stored(sink, stored_as)
    follow = f"normal-{n}"
    post(sidecar.port, "/v1/models/iris:predict", BODY, (b"X-Request-ID", follow.encode()))
    assert wait_stored(sink, follow)["rows"] == 1
    lost = [
        line
        for line in metric(sidecar, "modeltap_capture_dropped_events_total")
        if not line.endswith(" 0.0")
    ]
    assert lost == []
