"""Every daemon whose port is taken says so in one sentence and exits 2, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

MONITOR = Path(sys.executable).parent / "monitor"


@pytest.fixture
def taken() -> Iterator[str]:
    """An address another process (here, this one) is listening on."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield f"127.0.0.1:{squatter.getsockname()[1]}"


def free() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize(
    ("command", "setting"),
    [
        (["sidecar", "--listen", "{taken}", "--metrics-listen", "{free}"], "sidecar.listen"),
        (
            ["sidecar", "--listen", "{free}", "--metrics-listen", "{taken}"],
            "sidecar.metrics_listen",
        ),
        (["serve", "--listen", "{taken}"], "serve.listen"),
        (["collect", "--metrics-listen", "{taken}"], "collect.metrics_listen"),
        (["detect", "--metrics-listen", "{taken}"], "exporter.listen"),
    ],
)
def test_a_taken_port_is_one_sentence_and_exit_2(
    tmp_path: Path, taken: str, command: list[str], setting: str
) -> None:
    config = tmp_path / "modeltap.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"url": f"sqlite:///{tmp_path / 'm.db'}"},
                "sidecar": {"spool_dir": str(tmp_path / "spool")},
                "models": [
                    {
                        "name": "m",
                        "task": "regression",
                        "features": [{"name": "x", "type": "numerical"}],
                    }
                ],
            }
        )
    )
    argv = [part.format(taken=taken, free=free()) for part in command]
    result = subprocess.run(
        [str(MONITOR), "--config", str(config), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    expected = (
        f"error: cannot listen on {taken} ({setting}): the port is taken by another process; "
        f"stop what holds it or choose another address for {setting}"
    )
    assert expected in result.stderr.splitlines()
