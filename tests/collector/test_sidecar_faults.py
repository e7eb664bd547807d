"""The sidecar process when things go wrong: SIGTERM under load, the database going away,
restarts with a full spool. Callers must never notice; nothing may be lost or doubled."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.collector.conftest import SidecarProcess, events_in, free_port
from tests.conftest import PrivatePostgres

pytestmark = pytest.mark.integration

BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()


class Load:
    """Threads posting predictions through the sidecar, each on a keep-alive connection."""

    def __init__(self, port: int, *, threads: int = 6, delay_ms: int = 0) -> None:
        self.port = port
        self.target = "/v1/models/iris:predict" + (f"?delay_ms={delay_ms}" if delay_ms else "")
        self.answered: dict[str, int] = {}
        self.unanswered = 0  # the connection closed before any answer: never accepted
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.is_set():
            request_id = uuid.uuid4().hex
            try:
                connection.request(
                    "POST",
                    self.target,
                    BODY,
                    {"X-Request-ID": request_id, "Content-Type": "application/json"},
                )
                response = connection.getresponse()
                response.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                with self._lock:
                    self.unanswered += 1
                connection.close()
                if self._stop.wait(0.05):
                    return
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                continue
            with self._lock:
                self.answered[request_id] = response.status

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def statuses(self) -> Counter[int]:
        with self._lock:
            return Counter(self.answered.values())


def send(port: int, count: int) -> list[str]:
    ids = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(count):
        request_id = uuid.uuid4().hex
        connection.request(
            "POST",
            "/v1/models/iris:predict",
            BODY,
            {"X-Request-ID": request_id, "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        assert response.status == 200, response.read()
        response.read()
        ids.append(request_id)
    connection.close()
    return ids


def stored_ids(cluster: PrivatePostgres) -> Counter[str]:
    try:
        with psycopg.connect(cluster.url.replace("+psycopg", "")) as connection:
            rows = connection.execute("SELECT request_id FROM requests").fetchall()
    except psycopg.OperationalError:
        return Counter()
    return Counter(row[0] for row in rows)


def wait_for(condition: Any, seconds: float, what: str, log: Path | None = None) -> None:
    """Poll until ``condition()``; on timeout, fail with the tail of ``log`` to explain."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            tail = "\n".join(log.read_text().splitlines()[-40:]) if log and log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.1)


def test_sigterm_under_load_finishes_in_flight_work_and_loses_nothing(
    tmp_path: Path, model_server: str
) -> None:
    database = tmp_path / "capture.db"
    sidecar = SidecarProcess(
        tmp_path, model_server, f"sqlite:///{database}", {"sidecar": {"shutdown_grace": "10s"}}
    ).start()
    with Load(sidecar.port, delay_ms=40) as load:
        time.sleep(2.0)
        started = time.monotonic()
        assert sidecar.stop(signal.SIGTERM) == 0
        stopped_in = time.monotonic() - started
    assert stopped_in < 10
    statuses = load.statuses()
    assert set(statuses) == {200}, statuses  # every answer anyone got was the model's
    assert sum(statuses.values()) > 100
    stored = Counter(r["request_id"] for r in events_in(database)["requests"])
    missing = set(load.answered) - set(stored)
    assert not missing, f"{len(missing)} answered requests were never captured"
    assert max(stored[r] for r in load.answered) == 1
    rows = Counter(r["request_id"] for r in events_in(database)["rows"])
    assert all(rows[r] == 1 for r in load.answered)
    assert not list(sidecar.spool.glob("*.jsonl"))  # the sink was up: nothing left behind


def test_database_down_spools_then_replays_every_event_once(
    tmp_path: Path,
    model_server: str,
    private_postgres: PrivatePostgres,
) -> None:
    sidecar = SidecarProcess(
        tmp_path, model_server, private_postgres.url, {"sidecar": {"sink_timeout": "1s"}}
    ).start()
    before = send(sidecar.port, 50)
    wait_for(lambda: set(before) <= set(stored_ids(private_postgres)), 15, "first events")

    private_postgres.stop("immediate")
    during = send(sidecar.port, 300)  # every call answered while the database is gone
    wait_for(lambda: sidecar.metric("modeltap_capture_spool_bytes") > 0, 10, "spooling")
    assert sidecar.metric("modeltap_capture_sink_up") == 0

    private_postgres.start()
    everything = set(before) | set(during)
    wait_for(
        lambda: everything <= set(stored_ids(private_postgres)),
        30,
        f"replay ({len(everything - set(stored_ids(private_postgres)))} missing, "
        f"{sidecar.metric('modeltap_capture_replayed_events_total')} replayed)",
    )
    stored = stored_ids(private_postgres)
    assert max(stored[request_id] for request_id in everything) == 1
    wait_for(lambda: sidecar.metric("modeltap_capture_spool_bytes") == 0, 10, "empty spool")
    assert sidecar.metric("modeltap_capture_dropped_events_total") == 0
    assert sidecar.metric("modeltap_capture_replayed_events_total") >= 300
    assert sidecar.stop() == 0


def test_a_restart_replays_what_the_last_run_spooled(
    tmp_path: Path,
    model_server: str,
    private_postgres: PrivatePostgres,
) -> None:
    private_postgres.stop()
    options = {"sidecar": {"sink_timeout": "500ms", "shutdown_grace": "3s"}}
    first = SidecarProcess(tmp_path, model_server, private_postgres.url, options).start()
    ids = send(first.port, 80)
    assert first.stop() == 0
    assert list(first.spool.glob("*.jsonl")), "the events should wait on disk"

    private_postgres.start()
    second = SidecarProcess(
        tmp_path,
        model_server,
        private_postgres.url,
        options,
        port=free_port(),
        metrics_port=free_port(),
    ).start()
    wait_for(lambda: set(ids) <= set(stored_ids(private_postgres)), 20, "replay after restart")
    assert max(stored_ids(private_postgres)[i] for i in ids) == 1
    assert second.stop() == 0


# Times its exit with threading timers, which libfaketime (the shifted-clock pass) stalls.
@pytest.mark.real_clock
def test_a_hung_database_blocks_neither_callers_nor_the_exit(
    tmp_path: Path,
    model_server: str,
    private_postgres: PrivatePostgres,
) -> None:
    options = {"sidecar": {"sink_timeout": "500ms", "shutdown_grace": "3s"}}
    first = SidecarProcess(tmp_path, model_server, private_postgres.url, options).start()
    before = send(first.port, 20)
    wait_for(lambda: set(before) <= set(stored_ids(private_postgres)), 15, "first events")

    private_postgres.freeze()
    try:
        during = send(first.port, 50)  # answered while every write hangs
        wait_for(lambda: first.metric("modeltap_capture_spool_bytes") > 0, 10, "spooling")
        # A write stuck on the hung server holds the sink's thread; the process must not
        # wait for it at exit (the pod would be killed at the end of its grace period).
        assert first.stop(timeout=20) == 0
    finally:
        private_postgres.thaw()
    assert list(first.spool.glob("*.jsonl")), "the events should wait on disk"
    said = first.log.read_text()
    assert "failed (no answer within 0.5s); spooling to disk" in said
    assert "exiting with modeltap-sink_0 still blocked" in said

    second = SidecarProcess(
        tmp_path,
        model_server,
        private_postgres.url,
        options,
        port=free_port(),
        metrics_port=free_port(),
    ).start()
    everything = set(before) | set(during)
    wait_for(lambda: everything <= set(stored_ids(private_postgres)), 30, "replay after thaw")
    assert max(stored_ids(private_postgres)[i] for i in everything) == 1
    assert second.stop() == 0


def test_metrics_pass_promtool_and_readiness_follows_the_upstream(
    tmp_path: Path, model_server: str
) -> None:
    sidecar = SidecarProcess(tmp_path, model_server, f"sqlite:///{tmp_path / 'c.db'}").start()
    send(sidecar.port, 5)
    with urllib.request.urlopen(f"{sidecar.metrics_url}/metrics", timeout=5) as response:
        exposition = response.read()
    promtool = shutil.which("promtool")
    assert promtool is not None
    linted = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert (linted.returncode, linted.stdout, linted.stderr) == (0, b"", b"")
    assert b'modeltap_sidecar_requests_total{code="200",model="iris",version=""}' in exposition
    assert b"modeltap_sidecar_request_duration_seconds_bucket" in exposition
    wait_for(lambda: _status(f"{sidecar.metrics_url}/readyz") == 200, 5, "ready")
    assert sidecar.stop() == 0

    orphan = SidecarProcess(
        tmp_path / "orphan", f"http://127.0.0.1:{free_port()}", f"sqlite:///{tmp_path / 'd.db'}"
    )
    orphan.directory.mkdir()
    orphan.start()
    assert _status(f"{orphan.metrics_url}/healthz") == 200
    assert _status(f"{orphan.metrics_url}/readyz") == 503
    assert orphan.stop() == 0


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


# Times its exit with threading timers, which libfaketime (the shifted-clock pass) stalls.
@pytest.mark.real_clock
def test_the_exit_guard_ends_a_shutdown_that_overruns() -> None:
    # Every shutdown wait is bounded; the guard is the backstop should one not be. Armed by
    # the first stop signal only when the entry point asks for it.
    script = (
        "import logging, time\n"
        "from collector.sidecar import Stopper\n"
        "logging.basicConfig(format='%(message)s')\n"
        "Stopper()()\n"  # no guard asked for: this one must not end the process
        "Stopper(guard_after=1.0)()\n"
        "time.sleep(60)\n"
    )
    ended = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=30, check=False
    )
    assert ended.returncode == 1
    assert ended.stderr.decode().strip() == "still stopping 1s after the stop signal; exiting now"
