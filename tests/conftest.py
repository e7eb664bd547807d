"""Shared fixtures: real services come from scripts/services.sh (see `make test`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

SERVICES_HINT = "start them with `scripts/services.sh start` and source .state/services.env"


def service_env(name: str) -> str:
    """A MONITOR_TEST_* setting; missing means the run is broken, never a skip."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: the tests need the real services; {SERVICES_HINT}")
    return value


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the real PostgreSQL server's maintenance database."""
    return service_env("MONITOR_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the real PostgreSQL, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_url(postgres_url).set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """host:port of the real Kafka broker."""
    return service_env("MONITOR_TEST_KAFKA")


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    """Base URL of the real Prometheus server."""
    return service_env("MONITOR_TEST_PROMETHEUS")


class PrivatePostgres:
    """A throwaway PostgreSQL cluster of one test's own, which it may stop and start.

    Fault tests take the database away mid-run; doing that to the shared server would
    break every other test, so they get a cluster of their own (initdb takes ~1 s).
    """

    BIN = Path("/usr/lib/postgresql/15/bin")

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="modeltap-pg-"))
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.directory / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self.start()
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute("CREATE DATABASE modeltap")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/modeltap"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.BIN / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        # No synchronous_commit=off here: an immediate stop would then lose transactions
        # the client saw committed, which is the database's fault, not the one under test.
        self._run(
            "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL of the test's own (see PrivatePostgres), schema at head."""
    from monitor.store.engine import make_engine
    from monitor.store.migrate import upgrade

    cluster = PrivatePostgres()
    engine = make_engine(cluster.url)
    upgrade(engine)
    engine.dispose()
    yield cluster
    cluster.destroy()
