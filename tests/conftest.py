"""Shared fixtures: real services come from scripts/services.sh (see `make test`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

# Evidently (a test dependency, for known answers) must never phone home from a test run;
# set before any test module imports it.
os.environ["DO_NOT_TRACK"] = "1"

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
    yield from _scratch_database(postgres_url)


def _scratch_database(postgres_url: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_url(postgres_url).set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def postgres_module_database(postgres_url: str) -> Iterator[str]:
    """A fresh database on the real PostgreSQL shared by one module's tests, then dropped."""
    yield from _scratch_database(postgres_url)


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
        self.frozen = False
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

    def _processes(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, …)."""
        postmaster = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # After the command name's ")": state, then the parent's pid.
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(stat.parent.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """SIGSTOP every process of the cluster: a database that hangs rather than refuses,
        so connections stay open and writes wait for an answer that does not come."""
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):  # a backend that just ended
                os.kill(pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):  # a backend that just ended
                os.kill(pid, signal.SIGCONT)
        self.frozen = False

    def destroy(self) -> None:
        if self.frozen:
            with contextlib.suppress(OSError):
                self.thaw()
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
    from modeltap.store import make_engine, upgrade

    cluster = PrivatePostgres()
    engine = make_engine(cluster.url)
    upgrade(engine)
    engine.dispose()
    yield cluster
    cluster.destroy()


class PrivateKafka:
    """A single-node KRaft broker of one test's own, which it may stop, kill and restart.

    Uses the jars scripts/services.sh fetched; ~5 s to start. Fault tests stop brokers,
    which must not happen to the shared one.
    """

    def __init__(self) -> None:
        state = Path(os.environ.get("MONITOR_STATE_DIR", Path(__file__).parents[1] / ".state"))
        self.libs = state / "kafka" / "libs"
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            pytest.fail(f"no Kafka jars in {self.libs}; {SERVICES_HINT}")
        self.directory = Path(tempfile.mkdtemp(prefix="modeltap-kafka-"))
        self.port, controller = _free_port(), _free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.config = self.directory / "server.properties"
        self.config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.directory / 'data'}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=3",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "",
                ]
            )
        )
        classpath = f"{self.libs}/*"
        cluster = "modeltapTestCluster00A"  # 22 characters of base64, not starting with '-'
        subprocess.run(
            [
                "java",
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster,
                "-c",
                str(self.config),
                "--ignore-formatted",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = (self.directory / "kafka.log").open("ab")
        self.process = subprocess.Popen(
            ["java", "-Xmx512m", "-cp", f"{self.libs}/*", "kafka.Kafka", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"private Kafka exited; see {self.directory / 'kafka.log'}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.2)
        else:
            pytest.fail(f"private Kafka did not listen within 90 s; see {self.directory}")
        self._wait_ready()

    def _wait_ready(self) -> None:
        from kafka import KafkaAdminClient

        deadline = time.monotonic() + 60
        while True:
            try:
                KafkaAdminClient(bootstrap_servers=self.bootstrap).close()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(signum)
        self.process.wait(60)
        self.process = None

    def destroy(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_kafka() -> Iterator[PrivateKafka]:
    """A Kafka broker of the test's own (see PrivateKafka)."""
    broker = PrivateKafka()
    yield broker
    broker.destroy()
