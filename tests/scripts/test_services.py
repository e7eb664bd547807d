"""scripts/services.sh from a checkout only root can enter, and with its ports taken.

A clone under root's home (mode 700) once failed at initdb: the postgres user could not
reach the cluster's directory. These tests copy the scripts into such a folder and start
and stop a PostgreSQL of their own there, on a free port, next to the suite's services.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).parents[2] / "scripts"
SERVICE_VARIABLES = (
    "MONITOR_TEST_POSTGRES_URL",
    "MONITOR_TEST_KAFKA",
    "MONITOR_TEST_PROMETHEUS",
    "MONITOR_TEST_PROMETHEUS_DIR",
    "MONITOR_STATE_DIR",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def private_checkout() -> Iterator[Path]:
    """A copy of scripts/ inside a mode-700 folder, as a clone under /root would be."""
    parent = Path(tempfile.mkdtemp(prefix="modeltap-private-"))
    parent.chmod(0o700)
    checkout = parent / "mt"
    checkout.mkdir()
    shutil.copytree(SCRIPTS, checkout / "scripts")
    yield checkout
    shutil.rmtree(parent, ignore_errors=True)


def services(checkout: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    return subprocess.run(
        [str(checkout / "scripts" / "services.sh"), *args],
        cwd=checkout,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_postgres_starts_and_stops_from_a_private_checkout(private_checkout: Path) -> None:
    assert os.stat(private_checkout.parent).st_mode & 0o077 == 0
    port = str(free_port())
    started = services(private_checkout, "start", "postgres", MONITOR_PG_PORT=port)
    assert started.returncode == 0, started.stderr
    assert "could not change directory" not in started.stderr
    env_file = (private_checkout / ".state" / "services.env").read_text()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/modeltap"
    assert f"MONITOR_TEST_POSTGRES_URL='{url}'" in env_file
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        assert connection.execute("select 1").fetchone() == (1,)

    # The cluster sits outside the private folder, in a directory postgres owns alone.
    cluster = Path((private_checkout / ".state" / "postgres" / "cluster-dir").read_text().strip())
    assert not cluster.is_relative_to(private_checkout.parent)
    assert cluster.owner() == "postgres"
    assert cluster.stat().st_mode & 0o077 == 0

    status = services(private_checkout, "status", "postgres")
    assert status.stdout.strip() == f"postgres: running at {url}"

    stopped = services(private_checkout, "stop", "postgres")
    assert stopped.returncode == 0, stopped.stderr
    assert not cluster.exists()
    assert (
        "MONITOR_TEST_POSTGRES_URL"
        not in (private_checkout / ".state" / "services.env").read_text()
    )
    # And it starts again after a stop (a fresh cluster).
    again = services(private_checkout, "start", "postgres", MONITOR_PG_PORT=port)
    assert again.returncode == 0, again.stderr
    assert services(private_checkout, "stop", "postgres").returncode == 0
    assert not cluster.exists()


@pytest.mark.parametrize(
    ("service", "variable"),
    [
        ("postgres", "MONITOR_PG_PORT"),
        ("kafka", "MONITOR_KAFKA_PORT"),
        ("prometheus", "MONITOR_PROMETHEUS_PORT"),
        ("kube", "MONITOR_KUBE_PORT"),
    ],
)
def test_a_taken_port_is_named_with_its_override(
    private_checkout: Path, service: str, variable: str
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = services(private_checkout, "start", service, **{variable: str(port)})
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"services: error: port {port}, which ")
    assert "already taken by another process" in message
    assert f"{variable}=" in message
    # Nothing was left behind for a cluster that never started.
    assert not (private_checkout / ".state" / "postgres" / "cluster-dir").exists()
