"""`monitor demo`: the summary it ends on, and Ctrl-C part-way (a real process sent SIGINT)
stops the model server and the sidecar and says in one line what was done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from detectors import fitting
from detectors.settings import ModelSettings
from modeltap.store import SqlStore
from monitor.cli import cli
from monitor.demo.detectors import demo_config
from monitor.demo.history import run_demo

ROOT = Path(__file__).resolve().parents[3]


def test_the_demo_ends_on_where_its_outputs_are(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["demo", "--dir", str(tmp_path), "--hours", "2", "--rps", "0.2", "--live-seconds", "0"],
    )
    assert result.exit_code == 0, result.output
    summary = result.output.splitlines()[-4:]
    assert summary[0].startswith("done: 2 h of history (")
    assert "every detector run once" in summary[0]
    assert summary[1].split() == ["report", str(tmp_path / "report.html")]
    assert summary[2].split() == ["OpenMetrics", str(tmp_path / "history.om")]
    assert summary[3].split()[:2] == ["database", str(tmp_path / "demo.db")]
    assert (tmp_path / "history.om").read_text().endswith("# EOF\n")


def test_the_estimate_alerts_hours_before_the_labels_of_the_drifted_window(
    tmp_path: Path,
) -> None:
    now = datetime(2026, 11, 20, 15, 20, tzinfo=UTC)
    out = StringIO()
    lead = run_demo(tmp_path, hours=2, rps=0.5, seed=7, console=Console(file=out, width=200),
                    live_seconds=0, now=now)  # fmt: skip
    assert lead is not None, out.getvalue()
    drifted = datetime(2026, 11, 20, 14, tzinfo=UTC)  # the planted change: the last hour
    assert (lead.window_start, lead.window_end) == (drifted, drifted + timedelta(hours=1))
    assert lead.estimated < lead.threshold
    assert lead.estimated_at == lead.window_end
    assert lead.lead is not None
    assert lead.lead > timedelta(hours=2), lead
    printed = " ".join(out.getvalue().split())
    assert f"the estimate leads the labels by {lead.lead.total_seconds() / 3600:.1f} h" in printed
    # From the store, not from the demo's own account: when the estimate alerted, fewer
    # than detectors.min_rows of the window's labels had arrived, so no realized figure
    # could exist yet; when enough had, the realized accuracy confirms the drop.
    settings = ModelSettings.from_config(demo_config(2), "churn")
    store = SqlStore.open(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        rows = fitting.rows_from_store(store, settings, drifted, lead.window_end, lead.version)
        results = store.results_between("churn", drifted, lead.window_end)
    finally:
        store.close()
    assert rows.label_received_at is not None
    arrived = rows.label_received_at[np.isfinite(rows.label_received_at)]
    assert (arrived <= lead.estimated_at.timestamp()).sum() < settings.min_rows
    assert lead.realized_at is not None
    assert (arrived <= lead.realized_at.timestamp()).sum() == settings.min_rows
    realized = next(
        r for r in results
        if r.detector == "realized_accuracy" and r.version == lead.version and not r.segment
    )  # fmt: skip
    assert realized.alert
    assert realized.score is not None
    assert realized.score < lead.estimated


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, from /proc (children of children included)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name, in parentheses, may hold spaces: the fields after it are safe.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Demo:
    """`monitor demo` as a user starts it, its output collected line by line as it comes."""

    def __init__(self, directory: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # A suite started in the background (`make test &`) has SIGINT ignored, and an
        # ignored signal stays ignored across exec, so the demo would never see the Ctrl-C
        # these tests send. A handler does not survive exec: with one in place for the
        # moment of the start, the demo begins with SIGINT's default, as in a terminal.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "demo", "--dir", str(directory), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=ROOT,
                env=env,
            )
        finally:
            signal.signal(signal.SIGINT, previous)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"never printed {text!r}:\n" + "\n".join(self.lines))
            time.sleep(0.1)

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail("still running 90 s after SIGINT:\n" + "\n".join(self.lines))
        self._reader.join(10)
        return code


@pytest.mark.real_clock
def test_ctrl_c_during_the_live_part_leaves_nothing_running(tmp_path: Path) -> None:
    demo = Demo(tmp_path, "--hours", "2", "--rps", "0.2", "--live-seconds", "300",
                "--live-rps", "20")  # fmt: skip
    demo.wait_for("in front of it")
    children = descendants(demo.process.pid)
    assert len(children) >= 2  # the model server and the sidecar (and their own children)
    time.sleep(1)  # some live traffic first, so there is a count to report
    assert demo.interrupt() == 130, "\n".join(demo.lines)
    assert not [pid for pid in children if alive(pid)]
    last = demo.lines[-1]
    assert last.startswith("interrupted during live traffic through the sidecar ("), last
    assert "requests sent); done so far: 2 h of history (" in last
    assert "every detector run once; nothing left running; database: " in last
    assert "Traceback" not in "\n".join(demo.lines)


@pytest.mark.real_clock
def test_ctrl_c_while_writing_history_says_how_far_it_got(tmp_path: Path) -> None:
    # Days of history at 50 rps take minutes: the interrupt lands while they are written.
    demo = Demo(tmp_path, "--hours", "48", "--rps", "50")
    demo.wait_for("h of history for model")
    time.sleep(1)
    assert demo.interrupt() == 130, "\n".join(demo.lines)
    last = demo.lines[-1]
    assert last.startswith("interrupted during writing history ("), last
    assert "of 8640000 requests" in last
    assert "done so far: nothing; nothing left running" in last
    assert not (tmp_path / "model.log").exists()  # the live part never started
