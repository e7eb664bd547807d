"""The estimators benchmark still runs (its --quick smoke mode) and agrees with NannyML; its
timings are not judged here. It needs the NannyML anchor environment (scripts/anchors.sh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.detectors.anchors import anchor_python

ROOT = Path(__file__).resolve().parents[2]


def test_quick_mode_runs_every_estimator_and_agrees_with_nannyml() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "estimators_speed.py"),
            "--quick",
            "--nannyml-python",
            str(anchor_python()),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    for section in ("1. CBPE", "2. DLE", "3. PCA reconstruction error", "Summary"):
        assert section in output
    assert output.count("peak RSS") >= 6
    assert "calibrated True, modeltap calibrated True" in output
    assert "DIFFER" not in output
