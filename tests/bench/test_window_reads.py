"""The window-read benchmark still runs (its --quick smoke mode); its timings are not judged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_quick_mode_times_every_read_at_each_history(database: str, postgres_url: str) -> None:
    target = ["--postgres", postgres_url] if database == "postgres" else ["--sqlite"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "window_reads.py"), "--quick", *target],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    header = next(row for row in rows if row[:2] == ["history", "rows"])
    assert header[2:] == ["rows+labels", "serving", "violations", "counts", "new", "labels"]
    measured = [row for row in rows if row and row[0] in ("1d", "3d")]
    assert [(row[0], row[1]) for row in measured] == [("1d", "2,000"), ("3d", "6,000")]
    assert all(row.count("ms") == 5 for row in measured)
    ratios = next(row for row in rows if row and row[0] == "ratio")
    assert len(ratios) == 7
    assert all(value.endswith("x") for value in ratios[2:])
