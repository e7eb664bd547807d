"""`monitor detect`: --once through CliRunner, the daemon as a real process with signals."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from detectors import fitting
from detectors.settings import ModelSettings
from modeltap.configload import load_config
from modeltap.schema import FAMILIES
from modeltap.store import SqlStore
from monitor.cli import cli
from tests.detectors.traffic import MODEL, Traffic, write

T0 = datetime(2026, 11, 25, tzinfo=UTC)
CONFIG = """
storage: {{url: "{url}"}}
models:
  - name: churn
    task: classification
    positive_class: 1
    features:
      - {{name: age, type: numerical}}
      - {{name: tenure, type: numerical}}
      - {{name: plan, type: categorical}}
detectors: {{window: 1h, interval: {interval}, label_horizon: 1d}}
"""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Now is a week after the test traffic, whatever the machine's date: `--at` must not be
    in the future, and the traffic's fixed dates must not be compared with the wall clock."""
    import detectors.daemon

    now = T0 + timedelta(days=7)
    monkeypatch.setattr(detectors.daemon, "system_clock", lambda: now)
    return now


def prepare(
    tmp_path: Path, *, interval: str = "5m", broken: bool = False, per_hour: int = 300
) -> Path:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.format(url=url, interval=interval))
    store = SqlStore.open(url, migrate=True)
    write(store, [Traffic(T0, T0 + timedelta(hours=4), per_hour=per_hour)])
    settings = ModelSettings.from_config(load_config(config, {}), MODEL)
    if broken:
        store.put_reference(MODEL, "", {"format": 99}, source="broken", created_at=T0)
    else:
        rows = fitting.rows_from_store(store, settings, T0, T0 + timedelta(hours=2), None)
        fitting.save(
            store, settings, fitting.fit_rows(settings, rows), version="", source="t", now=T0
        )
    store.close()
    return config


def test_once_runs_every_detector_and_prints_the_newest_complete_window(tmp_path: Path) -> None:
    config = prepare(tmp_path)
    result = CliRunner().invoke(
        cli, ["--config", str(config), "detect", "--once", "--at", "2026-11-25T03:30:00Z"]
    )
    assert result.exit_code == 0, result.output
    for detector in FAMILIES:  # the estimators too (their reference has no labels: skipped)
        assert f"churn/{detector}: ok, 4 window(s)" in result.output
    assert "churn: 2026-11-25 02:00 .. 03:00 UTC" in result.output
    assert "feature_drift" in result.output
    assert "latency_p99_ms" in result.output
    store = SqlStore.open(f"sqlite:///{tmp_path / 'm.db'}")
    latest = store.latest_results(MODEL)
    store.close()
    # The newest stored results are the open window's, so far.
    assert {r.window_start for r in latest} == {T0 + timedelta(hours=3)}
    assert all(r.details["partial"] is True for r in latest)


def test_once_exits_1_when_a_detector_fails(tmp_path: Path) -> None:
    config = prepare(tmp_path, broken=True)
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config),
            "detect",
            "--once",
            "--at",
            "2026-11-25T04:30:00Z",
            "--detector",
            "drift",
            "--detector",
            "operations",
        ],
    )
    assert result.exit_code == 1
    assert "churn/drift: failed" in result.output
    assert "fit it again" in result.output
    assert "churn/operations: ok" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["detect", "--at", "2026-11-25T00:00Z"], "--at only applies with --once"),
        (["detect", "--once", "--model", "nope"], "model 'nope' is not configured"),
        (["detect", "--once", "--at", "yesterday"], "not an ISO 8601 time"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    config = prepare(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_no_models_is_a_configuration_error() -> None:
    result = CliRunner().invoke(cli, ["detect", "--once"])
    assert result.exit_code == 2
    assert "no models are configured" in result.output


class Daemon:
    """`monitor detect` as a child process, its output collected by a thread."""

    def __init__(self, config: Path) -> None:
        command = [sys.executable, "-c", "from monitor.cli import main; main()"]
        self.process = subprocess.Popen(
            [*command, "--config", str(config), "detect"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if text in self.output:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.01)
        self.process.kill()
        pytest.fail(f"{text!r} not seen; output:\n{self.output}")

    def stop(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


# A real daemon process: APScheduler's timers run on the real clock, not a shifted one.
@pytest.mark.real_clock
def test_the_daemon_runs_jobs_and_stops_warmly_on_sigterm(tmp_path: Path) -> None:
    config = prepare(tmp_path, interval="1s")
    daemon = Daemon(config)
    daemon.wait_for("churn/drift:")
    assert daemon.stop() == 0, daemon.output
    assert "warm stop" in daemon.output
    assert "detectors stopped" in daemon.output
    store = SqlStore.open(f"sqlite:///{tmp_path / 'm.db'}")
    health = {h.detector: h for h in store.run_health(MODEL)}
    store.close()
    # Every family is a job of its own, the estimators too.
    assert set(health) == {
        "operations",
        "quality",
        "drift",
        "performance",
        "ab",
        "estimation",
        "multivariate",
    }
    assert all(h.failures == 0 for h in health.values())


# A real daemon process: APScheduler's timers run on the real clock, not a shifted one.
@pytest.mark.real_clock
def test_a_second_sigterm_stops_at_once(tmp_path: Path) -> None:
    config = prepare(tmp_path, interval="1s", per_hour=3000)
    daemon = Daemon(config)
    daemon.wait_for("detectors running")
    # Hold SQLite's write lock: the running jobs cannot save, so the warm stop cannot end.
    blocker = sqlite3.connect(tmp_path / "m.db", timeout=30)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        daemon.process.send_signal(signal.SIGTERM)
        daemon.wait_for("warm stop")
        started = time.monotonic()
        assert daemon.stop(timeout=20) == 1, daemon.output
        assert time.monotonic() - started < 10
        assert "stopping now" in daemon.output
    finally:
        blocker.rollback()
        blocker.close()


def test_running_once_again_shows_the_stored_results_with_their_reasons(tmp_path: Path) -> None:
    config = prepare(tmp_path)
    args = ["--config", str(config), "detect", "--once", "--at", "2026-11-25T04:00:00Z", "--all"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "nothing computed" not in again.output
    assert "churn: 2026-11-25 03:00 .. 04:00 UTC (stored earlier; no window was due)" in (
        again.output
    )
    assert "feature_drift" in again.output


def test_a_missing_result_says_why(tmp_path: Path) -> None:
    config = prepare(tmp_path)
    store = SqlStore.open(f"sqlite:///{tmp_path / 'm.db'}")
    store.put_reference(MODEL, "", {"format": 99}, source="broken", created_at=T0)
    store.close()
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "detect", "--once", "--at", "2026-11-25T03:00:00Z"],
    )
    assert "fit it again with `monitor reference set`" in result.output


def test_at_in_the_future_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import detectors.daemon

    monkeypatch.setattr(detectors.daemon, "system_clock", lambda: T0 + timedelta(hours=2))
    config = prepare(tmp_path)
    result = CliRunner().invoke(
        cli, ["--config", str(config), "detect", "--once", "--at", "2026-11-25T03:00:00Z"]
    )
    assert result.exit_code == 2
    assert "--at 2026-11-25T03:00:00+00:00 is in the future (now is 2026-11-25T02:00:00+00:00)" in (
        result.output
    )
