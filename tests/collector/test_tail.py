"""Log-tail mode: rotation, truncation, restarts and crashes lose and double nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
import yaml

from collector.tail import LineReader, line_exchange, load_position, save_position
from tests.collector.conftest import free_port, wait_http

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def lines_of(reader: LineReader, limit: int = 100) -> list[bytes]:
    return [text for _, _, text in reader.read(limit)[0]]


def test_partial_lines_wait_for_their_newline(tmp_path: Path) -> None:
    log = tmp_path / "p.jsonl"
    log.write_bytes(b'{"a": 1}\n{"a"')
    reader = LineReader(log, None)
    assert lines_of(reader) == [b'{"a": 1}\n']
    assert lines_of(reader) == []
    with log.open("ab") as handle:
        handle.write(b": 2}\n")
    assert lines_of(reader) == [b'{"a": 2}\n']


def test_rotation_finishes_the_old_file_then_reads_the_new(tmp_path: Path) -> None:
    log = tmp_path / "p.jsonl"
    log.write_bytes(b"1\n2\n")
    reader = LineReader(log, None)
    assert lines_of(reader) == [b"1\n", b"2\n"]
    with log.open("ab") as handle:
        handle.write(b"3\n")  # written just before the rotation
    log.rename(tmp_path / "p.jsonl.1")
    log.write_bytes(b"4\n")
    assert lines_of(reader) + lines_of(reader) == [b"3\n", b"4\n"]


def test_truncation_starts_over(tmp_path: Path) -> None:
    log = tmp_path / "p.jsonl"
    log.write_bytes(b"one\ntwo\n")
    reader = LineReader(log, None)
    assert len(lines_of(reader)) == 2
    log.write_bytes(b"3\n")  # truncate and write less than before
    assert lines_of(reader) == [b"3\n"]


def test_a_saved_position_resumes_even_after_rotation_while_stopped(tmp_path: Path) -> None:
    log = tmp_path / "p.jsonl"
    state = tmp_path / "state.json"
    log.write_bytes(b"1\n2\n")
    reader = LineReader(log, None)
    _, position = reader.read(1)
    assert position is not None
    save_position(state, position)
    reader.close()
    assert load_position(state) == position

    resumed = LineReader(log, load_position(state))
    assert lines_of(resumed) == [b"2\n"]
    resumed.close()

    log.rename(tmp_path / "p.jsonl.1")  # rotated while nothing was running
    log.write_bytes(b"3\n")
    after = LineReader(log, position)
    assert lines_of(after) + lines_of(after) == [b"2\n", b"3\n"]


def test_unreadable_state_means_start_from_the_beginning(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{broken")
    assert load_position(state) is None
    assert load_position(tmp_path / "absent.json") is None


def test_lines_become_exchanges_with_stable_ids() -> None:
    line = (
        5,
        10,
        b'{"request_id": "r1", "latency_ms": 12.5, "status": 201, "version": "v2", '
        b'"ts": "2026-11-25T10:00:00+01:00", "features": {"x": 1}, "prediction": 0}\n',
    )
    exchange = line_exchange(line, model="m", version="", now=NOW)
    assert exchange is not None
    assert (exchange.request_id, exchange.latency_ms, exchange.status) == ("r1", 12.5, 201)
    assert (exchange.model, exchange.version) == ("m", "v2")
    assert exchange.started == datetime(2026, 11, 25, 9, tzinfo=UTC)
    again = line_exchange(line, model="m", version="", now=NOW)
    assert again is not None
    assert exchange.event_id == again.event_id
    moved = line_exchange((5, 11, line[2]), model="m", version="", now=NOW)
    assert moved is not None
    assert exchange.event_id != moved.event_id


def test_lines_invent_nothing() -> None:
    # No latency given: none stored (a 0 dragged the percentiles down); no status: 200.
    bare = line_exchange((1, 0, b'{"features": {"x": 1}}\n'), model="m", version="", now=NOW)
    assert bare is not None
    assert (bare.request_id, bare.latency_ms, bare.status, bare.started) == (
        bare.event_id,
        None,
        200,
        NOW,
    )
    odd = b'{"latency_ms": NaN, "status": 1e9, "ts": "9999-12-31T23:59:59+00:00"}\n'
    weird = line_exchange((1, 0, odd), model="m", version="", now=NOW)
    assert weird is not None
    assert (weird.latency_ms, weird.status, weird.started) == (None, 200, NOW)
    # A line that is not a JSON object records no call at all (it became a status-200 one).
    for text in (b"not json\n", b"[1, 2]\n", b"[" * 100_000 + b"\n"):
        assert line_exchange((1, 0, text), model="m", version="", now=NOW) is None


class Tail:
    """`monitor sidecar --tail` as a process writing into SQLite."""

    def __init__(self, directory: Path, log: Path) -> None:
        self.directory, self.log = directory, log
        self.database = directory / "tail.db"
        self.metrics_port = free_port()
        config = {
            "sink": {"url": f"sqlite:///{self.database}"},
            "models": [
                {
                    "name": "logged",
                    "task": "regression",
                    "features": [{"name": "x", "type": "numerical"}],
                }
            ],
            "sidecar": {
                "tail": str(log),
                "spool_dir": str(directory / "spool"),
                "metrics_listen": f"127.0.0.1:{self.metrics_port}",
            },
        }
        self.config = directory / "tail.yaml"
        self.config.write_text(yaml.safe_dump(config))
        self.process: subprocess.Popen[bytes] | None = None
        self.output: IO[bytes] | None = None

    def start(self) -> Tail:
        self.output = (self.directory / "tail.out").open("ab")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "monitor"), "--config", str(self.config), "sidecar"],
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        wait_http(f"http://127.0.0.1:{self.metrics_port}/healthz")
        return self

    def stop(self, signum: int = signal.SIGTERM) -> int:
        assert self.process is not None
        assert self.output is not None
        self.process.send_signal(signum)
        code = self.process.wait(30)
        self.output.close()
        return code

    def stored(self) -> Counter[str]:
        try:
            with sqlite3.connect(self.database) as connection:
                return Counter(
                    row[0] for row in connection.execute("select request_id from requests")
                )
        except sqlite3.OperationalError:
            return Counter()

    def wait_for(self, expected: set[str], seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while not expected <= set(self.stored()):
            assert time.monotonic() < deadline, (
                f"missing {len(expected - set(self.stored()))} of {len(expected)}"
            )
            time.sleep(0.1)


def write(log: Path, ids: range) -> set[str]:
    with log.open("a") as handle:
        for n in ids:
            handle.write(
                json.dumps(
                    {
                        "request_id": f"line-{n}",
                        "latency_ms": 3,
                        "features": {"x": n},
                        "prediction": n * 2,
                    }
                )
                + "\n"
            )
    return {f"line-{n}" for n in ids}


@pytest.mark.integration
def test_rotation_restarts_and_a_crash_lose_and_double_nothing(tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    log.touch()
    tail = Tail(tmp_path, log).start()
    expected = write(log, range(0, 200))
    tail.wait_for(expected)

    log.rename(tmp_path / "predictions.jsonl.1")  # logrotate's rename-and-create
    log.touch()
    expected |= write(log, range(200, 300))
    tail.wait_for(expected)
    assert tail.stop() == 0

    expected |= write(log, range(300, 400))  # written while stopped
    tail.start()
    tail.wait_for(expected)
    expected |= write(log, range(400, 1400))
    time.sleep(0.3)
    assert tail.stop(signal.SIGKILL) == -signal.SIGKILL  # a crash, mid-stream

    tail.start()  # picks up where the crash left it; what was redone, the store ignores
    tail.wait_for(expected)
    os.truncate(log, 0)  # copytruncate-style rotation: same file, emptied, refilled
    expected |= write(log, range(1400, 1450))
    tail.wait_for(expected)
    assert tail.stop() == 0

    stored = tail.stored()
    assert set(stored) == expected
    assert max(stored.values()) == 1
    with sqlite3.connect(tail.database) as connection:
        rows = connection.execute("select count(*) from predictions").fetchone()[0]
    assert rows == len(expected)


@pytest.mark.integration
def test_lines_that_are_no_call_are_counted_and_unmeasured_latency_is_null(
    tmp_path: Path,
) -> None:
    log = tmp_path / "predictions.jsonl"
    log.write_text(
        'not json\n[1, 2]\n{"request_id": "no-latency", "features": {"x": 1}, "prediction": 2}\n'
    )
    tail = Tail(tmp_path, log).start()
    tail.wait_for({"no-latency"})
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{tail.metrics_port}/metrics").read()
    assert b'modeltap_capture_dropped_events_total{reason="unreadable_line"} 2.0' in metrics
    assert tail.stop() == 0
    with sqlite3.connect(tail.database) as connection:
        rows = connection.execute("select request_id, latency_ms, status_code from requests")
        assert rows.fetchall() == [("no-latency", None, 200)]
