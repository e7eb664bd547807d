"""NannyML's own answers for the known-answer tests, from the anchor environment.

NannyML 0.13 cannot live in .venv (its pins clash with ours), so scripts/anchors.sh keeps it
in ``$MONITOR_STATE_DIR/anchors-venv`` and :func:`nannyml` runs tests/detectors/nannyml_runner.py
there on the same arrays. A missing environment fails the test with the command that makes
it: the suite never skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("nannyml_runner.py")


def anchor_python() -> Path:
    """The anchor environment's interpreter, or a failed test saying how to create it."""
    state = Path(os.environ.get("MONITOR_STATE_DIR", ROOT / ".state"))
    python = state / "anchors-venv" / "bin" / "python"
    if not python.exists():
        pytest.fail(
            f"the NannyML anchor environment is missing ({python}); create it with "
            f"scripts/anchors.sh (make test runs it)",
            pytrace=False,
        )
    return python


def nannyml(task: str, workdir: Path, **arrays: Any) -> dict[str, Any]:
    """Run NannyML's ``task`` (cbpe, cbpe_multiclass, dle, pca) on ``arrays``; its answers."""
    python = anchor_python()
    source, target = workdir / f"{task}.npz", workdir / f"{task}.json"
    np.savez(source, **arrays)
    # The anchors' own interpreter must not see modeltap's site-packages or settings.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["NML_DISABLE_USAGE_LOGGING"] = "1"
    done = subprocess.run(
        [str(python), str(RUNNER), task, str(source), str(target)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        pytest.fail(f"NannyML's {task} failed in the anchor environment:\n{done.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
    return answer


def analysis_chunks(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-chunk records of the analysis period (NannyML also returns the reference's)."""
    return [chunk for chunk in answer["chunks"] if chunk["period"] == "analysis"]
