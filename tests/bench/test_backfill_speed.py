"""The backfill benchmark still runs at a tiny size; its timings are not judged here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_run_prints_both_sources_the_baseline_and_ratios(postgres_url: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "backfill_speed.py"), "--postgres", postgres_url,
         "--days", "1", "--per-day", "480", "--sample", "2", "--workers", "2"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "1 days x 480 requests" in output
    assert "24 hourly windows, every detector" in output
    # "modeltap, PostgreSQL   12.8 s   3.7   243 MiB   220 MiB": time, windows/s, peak RSS of
    # the process and of its largest worker.
    rows = {line.split("  ")[0]: line.split() for line in output.splitlines()}
    for source in ("modeltap, PostgreSQL", "modeltap, Parquet folder"):
        time, unit, rate, rss, mib, workers, mib_again = rows[source][-7:]
        assert (unit, mib, mib_again) == ("s", "MiB", "MiB")
        assert all(float(value) > 0 for value in (time, rate, rss, workers))
    time, unit, rate, rss, mib, _ = rows["Evidently 0.7, per window"][-6:]
    assert (unit, mib) == ("s", "MiB")
    assert all(float(value) > 0 for value in (time, rate, rss))
    assert "Evidently: 2 windows measured" in output
    ratios = [line for line in output.splitlines() if line.startswith("ratio Evidently / modeltap")]
    assert len(ratios) == 2
    assert all(line.endswith("x") and float(line.split()[-1][:-1]) > 0 for line in ratios)
