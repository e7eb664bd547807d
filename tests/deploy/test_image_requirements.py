"""scripts/image_requirements.py: the sidecar image gets every dependency but statistics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "image_requirements.py"


def listed(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_the_sidecar_gets_everything_but_the_statistics_stack() -> None:
    full, sidecar = listed("full"), listed("sidecar")
    left_out = [line for line in full if line not in sidecar]
    assert [line.split(">")[0] for line in left_out] == ["numpy", "scipy", "pandas", "pyarrow"]
    assert [line for line in full if line in sidecar] == sidecar
    assert any(line.startswith("aiohttp") for line in sidecar)


def test_extras_are_added_to_the_full_image() -> None:
    assert "grafana-client>=5.1,<6" in listed("full", "grafana")
    assert "grafana-client>=5.1,<6" not in listed("full")


def test_an_unknown_target_is_refused() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "tiny"], capture_output=True, check=False)
    assert result.returncode == 2
