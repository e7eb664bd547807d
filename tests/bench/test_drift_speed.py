"""The drift benchmark still runs (its --quick smoke mode); its timings are not judged here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_mode_runs_every_section_and_finds_equal_numbers(postgres_url: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "drift_speed.py"),
            "--quick",
            "--postgres",
            postgres_url,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    for section in (
        "1. DataDriftPreset",
        "2. KS per feature",
        "3. The drift detector",
        "4. One detector pass",
    ):
        assert section in output
    assert "equal results: yes" in output
    assert "NOT EQUAL" not in output
    assert "as the daemon's jobs (each reads its own)" in output
    assert "peak memory (resident)" in output
