"""The README's walkthrough for one's own model runs as written, from an empty folder."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PORTS = ("8080", "8000", "9108")


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Your own model, step by step\n", 1)[1]
    return section.split("```sh\n", 1)[1].split("\n```\n", 1)[0]


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


# The sidecar and the model server run on timers and sockets of their own.
@pytest.mark.real_clock
def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    script = walkthrough()
    # The same script on ports nobody else on this machine holds.
    for port in PORTS:
        assert port in script
        script = script.replace(port, free_port())
    (tmp_path / "walk.sh").write_text(script + "\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("MONITOR_CONFIG", None)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "walk.sh"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "is valid: 1 model(s)" in output
    assert "stored reference profile 1 for churn (every version): 2000 rows" in output
    assert "labels.csv: 300 written, 0 updated, 0 rejected; 0 match no stored prediction" in (
        output
    ), output
    assert "churn/drift: ok" in output
    assert "feature_drift" in output
    # Traffic of half a minute lies in one window, or two when it crosses an hour.
    assert re.search(r"churn: [12] window\(s\) stored", output)
    assert "(open window, so far)" in output
    assert (tmp_path / "modeltap-rules.yaml").stat().st_size > 0
    assert any((tmp_path / "grafana").rglob("*.json"))
