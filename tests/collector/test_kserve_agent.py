"""KServe's real inference-logger agent in front of a model, logging to `monitor serve`.

The agent (built from KServe v0.16.0 by scripts/services.sh) is what a KServe user runs:
it proxies each call to the predictor and sends the request and, for a 200 answer, the
response as two CloudEvents. Everything it sends must end up stored as the call was.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.rows import dict_row

from modeltap.store import SqlStore
from tests.collector.conftest import MONITOR, free_port, iris_models, wait_http
from tests.conftest import service_env

pytestmark = pytest.mark.integration

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]


class Child:
    def __init__(self, log: Path, command: list[str], env: dict[str, str] | None = None) -> None:
        self.log = log
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, env=os.environ | (env or {})
            )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def stack(tmp_path: Path, model_server: str, postgres_database: str) -> Iterator[dict[str, Any]]:
    agent_binary = service_env("MONITOR_TEST_KSERVE_AGENT")
    SqlStore.open(postgres_database, migrate=True).close()
    serve_port, agent_port = free_port(), free_port()
    config = tmp_path / "serve.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"url": postgres_database},
                "models": iris_models(),
                "serve": {"listen": f"127.0.0.1:{serve_port}", "pair_timeout": "2s"},
            }
        )
    )
    serve = Child(tmp_path / "serve.log", [str(MONITOR), "--config", str(config), "serve"])
    model_port = model_server.rsplit(":", 1)[1]
    probe = {"tcpSocket": {"port": int(model_port), "host": "127.0.0.1"}, "successThreshold": 1}
    agent = Child(
        tmp_path / "agent.log",
        [
            agent_binary,
            f"--port={agent_port}",
            f"--component-port={model_port}",
            f"--log-url=http://127.0.0.1:{serve_port}/v1/cloudevents",
            "--log-mode=all",
            "--inference-service=iris",
            "--namespace=default",
            "--component=predictor",
            "--endpoint=canary",
            "--metadata-headers=X-Request-Id",
        ],
        env={"SERVING_READINESS_PROBE": json.dumps(probe)},
    )
    try:
        wait_http(f"http://127.0.0.1:{serve_port}/healthz", log=serve.log)
        # A TCP connect, not an HTTP call: the agent would log a call as one more event.
        wait_port(agent_port, agent.log)
        yield {
            "agent": f"http://127.0.0.1:{agent_port}",
            "serve": f"http://127.0.0.1:{serve_port}",
            "database": postgres_database,
            "agent_log": agent.log,
            "serve_log": serve.log,
        }
    finally:
        agent.stop()
        assert serve.stop() == 0, serve.log.read_text()[-3000:]


def wait_port(port: int, log: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the agent never listened on {port}\n{log.read_text()[-2000:]}")


def call(base: str, body: bytes, request_id: str, content_type: str) -> int:
    request = urllib.request.Request(
        f"{base}/v1/models/iris:predict",
        data=body,
        headers={"Content-Type": content_type, "X-Request-ID": request_id},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def stored(database: str) -> dict[str, dict[str, Any]]:
    # Autocommit: a test that holds read locks between statements could deadlock with the
    # writer creating the day's partitions on both tables.
    with psycopg.connect(
        database.replace("+psycopg", ""), row_factory=dict_row, autocommit=True
    ) as connection:
        requests = connection.execute("SELECT * FROM requests").fetchall()
        rows = connection.execute(
            "SELECT request_id, count(*) AS n FROM predictions GROUP BY request_id"
        ).fetchall()
    counts = {row["request_id"]: row["n"] for row in rows}
    return {r["request_id"]: {**r, "rows": counts.get(r["request_id"], 0)} for r in requests}


def test_every_call_through_the_agent_is_stored_as_it_happened(stack: dict[str, Any]) -> None:
    sent: dict[str, bytes] = {}
    for n in range(20):  # batch calls the model answers
        body = json.dumps({"instances": ROWS}).encode()
        assert call(stack["agent"], body, f"ok-{n}", "application/json") == 200
        sent[f"ok-{n}"] = body
    # curl -d sends JSON as form data; the agent passes the content type on.
    form = json.dumps({"instances": ROWS}).encode()
    assert call(stack["agent"], form, "form-1", "application/x-www-form-urlencoded") == 200
    # Calls the model fails, last: the agent logs their request only. (uvicorn closes the
    # connection after a 500, and the agent's proxy may answer the next call on it 502.)
    for n in range(3):
        status = call(stack["agent"], b'{"instances": "nope"}', f"fail-{n}", "application/json")
        assert status >= 400

    expected = {*sent, "form-1", *(f"fail-{n}" for n in range(3))}
    deadline = time.monotonic() + 60
    while not expected <= set(stored(stack["database"])):
        assert time.monotonic() < deadline, (
            f"missing {sorted(expected - set(stored(stack['database'])))}\n"
            + stack["serve_log"].read_text()[-3000:]
        )
        time.sleep(0.3)
    calls = stored(stack["database"])
    assert set(calls) == expected  # keyed by the caller's X-Request-ID, from Ce-Metadata
    for request_id, body in sent.items():
        kept = calls[request_id]
        assert (kept["status_code"], kept["version"], kept["rows"]) == (200, "canary", 2)
        assert kept["request_bytes"] == len(body)  # what the caller sent, not a re-encoding
        assert kept["latency_ms"] is not None
        assert kept["latency_ms"] >= 0
        assert kept["capture_note"] is None
    assert calls["form-1"]["rows"] == 2
    for n in range(3):
        failed = calls[f"fail-{n}"]
        assert (failed["status_code"], failed["error"], failed["rows"]) == (
            599,
            "response_not_logged",
            0,
        )
    # Labels keyed on the caller's id join the logged rows.
    labels = urllib.request.Request(
        f"{stack['serve']}/v1/labels",
        data=json.dumps([{"request_id": "ok-0", "row_index": 1, "label": 1}]).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(labels, timeout=10) as response:
        assert json.loads(response.read())["written"] == 1
    with psycopg.connect(stack["database"].replace("+psycopg", "")) as connection:
        joined = connection.execute(
            "SELECT count(*) FROM predictions p JOIN labels l USING (label_key)"
        ).fetchone()
    assert joined == (1,)
    # The agent saw every delivery accepted (it reports anything but 200 as an error).
    log = stack["agent_log"].read_text()
    assert log.count("Sent with status code 200") == 2 * 21 + 3
    assert "Sent with status code 202" not in log
