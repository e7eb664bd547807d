"""The footprint benchmark still runs (a short smoke run); its figures are not judged here,
only that both variants ran, answered every request, and differ in what they load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.real_clock  # open-loop load on a schedule: libfaketime stalls its timers
def test_quick_mode_compares_both_variants_under_load() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sidecar_footprint.py"), "--quick",
         "--starts", "1", "--seconds", "2", "--kafka", ""],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    for figure in ("start to /readyz", "idle RSS", "RSS at 200 rps", "monitor --help"):
        assert figure in output
    (answered,) = [line.split()[-2:] for line in output.splitlines() if "answered 200" in line]
    assert answered == ["100.0%", "100.0%"]
    # The baseline maps the statistics stack; today's sidecar maps none of it.
    (mapped,) = [line.split()[-2:] for line in output.splitlines() if "heavy libs" in line]
    assert mapped == ["numpy,pandas", "-"]
