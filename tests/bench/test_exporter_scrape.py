"""The exporter benchmark still runs (its --quick smoke mode); its timings are not judged here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_mode_scrapes_about_2000_series_and_prints_ratios(postgres_url: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "exporter_scrape.py"), "--quick",
         "--postgres", postgres_url],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.split() for line in result.stdout.splitlines() if line.strip().endswith("x")]
    assert [line[0] for line in lines] == ["1h", "3h"]
    # The same series at every uptime: the synthetic results, and the run health of each of
    # the seven detector families per model.
    assert {line[3] for line in lines} == {"2,468"}
    assert "goal: a scrape of ~2000 series within 50 ms" in result.stdout
