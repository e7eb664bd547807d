"""Real processes for the sidecar tests: the model server and `monitor sidecar` itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITOR = Path(sys.executable).parent / "monitor"
IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_http(url: str, seconds: float = 20.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # an answer, even an error status, means it is up
        except OSError:
            time.sleep(0.05)
    detail = log.read_text()[-2000:] if log is not None and log.exists() else ""
    raise AssertionError(f"{url} did not answer within {seconds}s\n{detail}")


@pytest.fixture(scope="session")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The scikit-learn model server (tests/collector/model_server.py) as its own process."""
    port = free_port()
    log = tmp_path_factory.mktemp("model-server") / "log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.collector.model_server", "--port", str(port)],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", log=log)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def iris_models() -> list[dict[str, Any]]:
    features = [{"name": name, "type": "numerical"} for name in IRIS]
    return [
        {"name": "iris", "task": "classification", "features": features},
        {
            "name": "iris-json",
            "task": "classification",
            "features": features,
            "payload": {"features_path": "features", "prediction_path": "predictions"},
        },
    ]


@dataclass
class SidecarProcess:
    """`monitor sidecar` started from a config file, stopped with a signal."""

    directory: Path
    upstream: str
    sink: str
    extra: dict[str, Any] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    running: ClassVar[list[SidecarProcess]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def log(self) -> Path:
        return self.directory / "sidecar.log"

    @property
    def spool(self) -> Path:
        return self.directory / "spool"

    def start(self) -> SidecarProcess:
        sidecar = {
            "upstream": self.upstream,
            "listen": f"127.0.0.1:{self.port}",
            "metrics_listen": f"127.0.0.1:{self.metrics_port}",
            "model": "iris",
            "spool_dir": str(self.spool),
            "flush_interval": "50ms",
        } | self.extra.get("sidecar", {})
        config = {"sink": {"url": self.sink}, "models": iris_models(), "sidecar": sidecar}
        config |= {key: value for key, value in self.extra.items() if key != "sidecar"}
        path = self.directory / "modeltap.yaml"
        path.write_text(yaml.safe_dump(config))
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(MONITOR), "--config", str(path), "sidecar"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )
        SidecarProcess.running.append(self)
        wait_http(f"{self.metrics_url}/healthz", log=self.log)
        wait_http(f"{self.url}/healthz", log=self.log)  # the proxied model server, too
        return self

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        code = self.process.wait(timeout)
        self.process = None
        return code

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"{self.metrics_url}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture(autouse=True)
def _no_orphan_sidecars() -> Iterator[None]:
    """Kill any sidecar a test started and left running (say, after a failed assertion)."""
    before = len(SidecarProcess.running)  # longer-lived ones (module fixtures) are not ours
    yield
    for sidecar in SidecarProcess.running[before:]:
        if sidecar.process is not None and sidecar.process.poll() is None:
            sidecar.process.kill()
            sidecar.process.wait()


@pytest.fixture
def sidecar_factory(tmp_path: Path, model_server: str) -> Iterator[Any]:
    """Start sidecars in front of the model server; each is stopped at the end."""
    started: list[SidecarProcess] = []

    def make(sink: str | None = None, **extra: Any) -> SidecarProcess:
        directory = tmp_path / f"sidecar-{len(started)}"
        directory.mkdir()
        sidecar = SidecarProcess(
            directory,
            extra.pop("upstream", model_server),
            sink or f"sqlite:///{tmp_path / 'capture.db'}",
            extra,
        )
        started.append(sidecar)
        return sidecar.start()

    yield make
    for sidecar in started:
        if sidecar.process is not None:
            sidecar.process.kill()
            sidecar.process.wait()


def events_in(database: Path) -> dict[str, Any]:
    """Requests and prediction rows stored in a SQLite capture database, by request id."""
    import sqlite3

    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        requests = [dict(row) for row in connection.execute("select * from requests")]
        rows = [
            dict(row)
            for row in connection.execute(
                "select * from predictions order by request_id, row_index"
            )
        ]
    for row in rows:
        # SQLite's JSON columns have numeric affinity: numbers come back as numbers.
        for key in ("features", "prediction"):
            if isinstance(row[key], str):
                row[key] = json.loads(row[key])
    return {"requests": requests, "rows": rows}


@dataclass
class CollectorProcess:
    """`monitor collect` started from a config file."""

    directory: Path
    config: dict[str, Any]
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    running: ClassVar[list[CollectorProcess]] = []

    @property
    def log(self) -> Path:
        return self.directory / "collect.log"

    def start(self) -> CollectorProcess:
        config = self.config | {
            "collect": {
                "metrics_listen": f"127.0.0.1:{self.metrics_port}",
                "batch_wait": "100ms",
                **self.config.get("collect", {}),
            }
        }
        path = self.directory / "collect.yaml"
        path.write_text(yaml.safe_dump(config))
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(MONITOR), "--config", str(path), "collect"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )
        CollectorProcess.running.append(self)
        wait_http(f"http://127.0.0.1:{self.metrics_port}/metrics", log=self.log)
        return self

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        code = self.process.wait(timeout)
        self.process = None
        return code

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture(autouse=True)
def _no_orphan_collectors() -> Iterator[None]:
    before = len(CollectorProcess.running)
    yield
    for collector in CollectorProcess.running[before:]:
        if collector.process is not None and collector.process.poll() is None:
            collector.process.kill()
            collector.process.wait()


def kafka_config(bootstrap: str, prefix: str, **extra: Any) -> dict[str, Any]:
    """A kafka config section with topics of the test's own."""
    return {
        "bootstrap_servers": [bootstrap],
        "partitions": 3,
        "consumer_group": f"{prefix}-collector",
        "topics": {
            "events": f"{prefix}.events",
            "labels": f"{prefix}.labels",
            "dead_letter": f"{prefix}.dead",
        },
        **extra,
    }
