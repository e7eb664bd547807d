"""The whole chain on real processes, watched by a real Prometheus with the generated rules.

A model server behind `monitor sidecar` (Kafka sink), `monitor collect` into PostgreSQL,
labels through `monitor serve`, `monitor detect` with the exporter, and a Prometheus of the
test's own scraping all of them every 2 s with the rules `monitor rules generate` wrote for
this configuration. Clean traffic first (nothing may fire), then drift is planted: the
feature-drift alert must fire. At the end every dashboard panel's PromQL must return data.
Windows are 20 s and every alert waits 4 s, so the test takes about two minutes.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from exporters.alerts import NAMES
from exporters.dashboards.render import dashboards
from modeltap.configload import load_config
from monitor.cli import cli
from monitor.demo.model import churn_probability
from tests.collector.conftest import MONITOR, ROOT, free_port, kafka_config, wait_http
from tests.integration.prometheus import PrivatePrometheus

# real_clock: the broker (and Prometheus) keep their own clock, so the shifted-clock pass
# of `make test` leaves these out (see the marker in pyproject.toml).
pytestmark = [pytest.mark.integration, pytest.mark.real_clock]
POD = "churn-predictor-7d9f8"


@dataclass
class Traffic:
    """Requests to the sidecar from a thread; labels for most of them through monitor serve."""

    sidecar: int
    serve: int
    drifted: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    labelled: int = 0
    failures: list[str] = field(default_factory=list)

    def run(self) -> None:
        rng = random.Random(7)
        proxy = http.client.HTTPConnection("127.0.0.1", self.sidecar, timeout=10)
        labels: list[dict[str, Any]] = []
        while not self.stop.is_set():
            version = "v1" if rng.random() < 0.5 else "v2"
            age = rng.gauss(62 if self.drifted else 41, 9)
            tenure = rng.randint(1, 71)
            shares = [0.8, 0.15, 0.05] if self.drifted else [0.5, 0.35, 0.15]
            plan = rng.choices(["basic", "pro", "enterprise"], shares)[0]
            body: dict[str, Any] = {"inputs": [
                {"name": "age", "shape": [1], "datatype": "FP32", "data": [round(age, 1)]},
                {"name": "tenure_months", "shape": [1], "datatype": "INT64", "data": [tenure]},
                {"name": "plan", "shape": [1], "datatype": "BYTES", "data": [plan]},
            ]}  # fmt: skip
            if self.sent % 50 == 49:
                body = {"inputs": "broken"}  # the model server answers 400: a few errors
            proxy.request("POST", f"/v2/models/churn/versions/{version}/infer", json.dumps(body),
                          {"Content-Type": "application/json"})  # fmt: skip
            response = proxy.getresponse()
            response.read()
            self.sent += 1
            request_id = response.getheader("X-Request-ID")
            if response.status == 200 and request_id and rng.random() < 0.8:
                truth = int(rng.random() < churn_probability(age, tenure, plan))
                labels.append({"request_id": request_id, "row_index": 0, "label": truth})
            if len(labels) >= 40:
                self._post(labels)
                labels = []
            time.sleep(0.005)
        proxy.close()

    def _post(self, labels: list[dict[str, Any]]) -> None:
        serve = http.client.HTTPConnection("127.0.0.1", self.serve, timeout=10)
        serve.request(
            "POST", "/v1/labels", json.dumps(labels), {"Content-Type": "application/json"}
        )
        answer = serve.getresponse()
        text = answer.read().decode()
        if answer.status != 200:
            self.failures.append(f"labels: {answer.status} {text}")
        else:
            self.labelled += len(labels)
        serve.close()


class Process:
    """A `monitor` sub-command (or any command) as a child process with its own log."""

    def __init__(self, directory: Path, name: str, command: list[str]) -> None:
        self.log = directory / f"{name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def cadvisor_history(now: float) -> str:
    """Ten minutes of a pod's container CPU and memory up to ``now``, every 5 s, as cAdvisor
    would have exposed them. Nothing later: a block reaching into the future would make the
    head refuse every scraped sample before its end."""
    lines = [
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed.",
        "# TYPE container_cpu_usage_seconds_total counter",
    ]
    moments = [now - 600 + 5 * step for step in range(121)]
    labels = f'container="kserve-container",namespace="models",pod="{POD}"'
    lines += [f"container_cpu_usage_seconds_total{{{labels}}} {0.25 * (t - moments[0]):.3f} {t:.0f}"
              for t in moments]  # fmt: skip
    lines += [
        "# HELP container_memory_working_set_bytes Current working set in bytes.",
        "# TYPE container_memory_working_set_bytes gauge",
    ]
    lines += [f"container_memory_working_set_bytes{{{labels}}} {3.1e8 + 1e5 * i:.0f} {t:.0f}"
              for i, t in enumerate(moments)]  # fmt: skip
    return "\n".join(lines) + "\n# EOF\n"


def substitute(expr: str) -> str:
    # Grafana's $__rate_interval is at least four scrape intervals; 5m also reaches back into
    # the backfilled cAdvisor history, which ends when the test's Prometheus starts.
    rate = expr.replace("$__rate_interval", "5m")
    return rate.replace("$model", "churn").replace("$version", ".*")


def firing(prometheus: PrivatePrometheus, state: str = "firing") -> set[tuple[str, str]]:
    return {
        (alert["labels"]["alertname"], alert["labels"].get("feature", ""))
        for alert in prometheus.alerts()
        if alert["state"] == state
    }


@pytest.fixture
def stack(tmp_path: Path, postgres_database: str, kafka_bootstrap: str) -> Iterator[dict[str, Any]]:
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    ports = {
        name: free_port() for name in ("model", "sidecar", "metrics", "collect", "serve", "detect")
    }
    config = {
        "storage": {"url": postgres_database},
        "sink": {"url": f"kafka://{kafka_bootstrap}/{prefix}.events"},
        "kafka": kafka_config(kafka_bootstrap, prefix),
        "models": [{
            "name": "churn", "task": "classification", "positive_class": 1,
            "features": [{"name": "age", "type": "numerical"},
                         {"name": "tenure_months", "type": "numerical"},
                         {"name": "plan", "type": "categorical"}],
            "payload": {"prediction_path": "churn", "score_path": "probability"},
        }],
        "detectors": {
            "window": "20s", "interval": "2s", "label_horizon": "1m", "min_rows": 10,
            # Under no drift PSI is about (bins - 1) x (1/n + 1/m): at 150 rows, ~0.08.
            "drift": {"min_current_size": 150, "min_reference_size": 100},
            "thresholds": {"accuracy_min": 0.5, "f1_min": 0.1, "label_coverage_min": 0.05},
            # Two numerical features: at the default share of variance PCA keeps both, the
            # reconstruction is exact and its panel has nothing to draw.
            "multivariate": {"variance": 0.5},
        },
        "sidecar": {
            "upstream": f"http://127.0.0.1:{ports['model']}",
            "listen": f"127.0.0.1:{ports['sidecar']}",
            "metrics_listen": f"127.0.0.1:{ports['metrics']}",
            "model": "churn", "spool_dir": str(tmp_path / "spool"), "flush_interval": "100ms",
        },
        "collect": {"metrics_listen": f"127.0.0.1:{ports['collect']}", "batch_wait": "100ms"},
        "serve": {"listen": f"127.0.0.1:{ports['serve']}"},
        "exporter": {"listen": f"127.0.0.1:{ports['detect']}",
                     "alert_for": dict.fromkeys(NAMES, "4s")},
    }  # fmt: skip
    path = tmp_path / "e2e.yaml"
    path.write_text(yaml.safe_dump(config))
    rules = tmp_path / "rules.yml"
    generated = CliRunner().invoke(
        cli, ["--config", str(path), "rules", "generate", "-o", str(rules)]
    )
    assert generated.exit_code == 0, generated.output
    upgraded = CliRunner().invoke(cli, ["--config", str(path), "db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    monitor = [str(MONITOR), "--config", str(path)]
    model = [sys.executable, "-m", "monitor.demo.model", "--port", str(ports["model"])]
    processes = [Process(tmp_path, "model", model)]
    prometheus: PrivatePrometheus | None = None
    try:
        wait_http(f"http://127.0.0.1:{ports['model']}/v2/health/ready", log=processes[0].log)
        for name in ("sidecar", "collect", "serve", "detect"):
            processes.append(Process(tmp_path, name, [*monitor, name]))
        for name, port in (("sidecar", "metrics"), ("collect", "collect"), ("serve", "serve"),
                           ("detect", "detect")):  # fmt: skip
            log = next(p.log for p in processes if p.log.stem == name)
            wait_http(f"http://127.0.0.1:{ports[port]}/metrics", seconds=60, log=log)
        jobs = {
            "modeltap-sidecar": [f"127.0.0.1:{ports['metrics']}"],
            "modeltap-collect": [f"127.0.0.1:{ports['collect']}"],
            "modeltap-serve": [f"127.0.0.1:{ports['serve']}"],
            "modeltap-detect": [f"127.0.0.1:{ports['detect']}"],
        }
        prometheus = PrivatePrometheus(jobs, rules, cadvisor_history(time.time()))
        yield {"config": path, "ports": ports, "prometheus": prometheus, "directory": tmp_path}
    finally:
        if prometheus is not None:
            prometheus.stop()
        for process in reversed(processes):
            process.stop()
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        topics = [t for t in admin.list_topics() if t.startswith(prefix)]
        if topics:
            admin.delete_topics(topics)
        admin.close()


def test_drift_fires_after_the_plant_and_every_panel_has_data(stack: dict[str, Any]) -> None:
    prometheus: PrivatePrometheus = stack["prometheus"]
    ports = stack["ports"]
    traffic = Traffic(ports["sidecar"], ports["serve"])
    sender = threading.Thread(target=traffic.run, daemon=True)
    started = datetime.now(UTC)
    sender.start()
    try:
        time.sleep(20)
        # The reference: the clean traffic so far, as stored through Kafka and the collector.
        fitted = CliRunner().invoke(cli, [
            "--config", str(stack["config"]), "reference", "set", "--model", "churn",
            "--start", started.isoformat(), "--end", datetime.now(UTC).isoformat(),
        ])  # fmt: skip
        assert fitted.exit_code == 0, fitted.output
        # Clean traffic scored against it: nothing may fire (every alert waits only 4 s), and
        # the age feature is judged and not drifted whenever it is looked at.
        started_clean = time.monotonic()
        seen: set[tuple[str, str]] = set()
        judged: set[str] = set()
        while time.monotonic() - started_clean < 24 or not judged:
            assert time.monotonic() - started_clean < 90, prometheus.scrape_errors()
            seen |= firing(prometheus)
            for series in prometheus.query('modeltap_feature_drifted{feature="age"}'):
                judged.add(series["metric"]["version"])
                assert series["value"][1] == "0", series
            time.sleep(1)
        assert seen == set(), seen
        assert all(prometheus.targets_up().values()), prometheus.targets_up()
        # Older callers on the cheap plan from now on.
        traffic.drifted = True
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and ("ModeltapFeatureDrift", "age") not in firing(
            prometheus
        ):
            time.sleep(1)
        assert ("ModeltapFeatureDrift", "age") in firing(prometheus), prometheus.alerts()
        assert not traffic.failures, traffic.failures[:3]
        assert traffic.labelled > 100
        # Every panel of every dashboard returns data from this Prometheus.
        config = load_config(stack["config"], {})
        empty = []
        for board in dashboards(config).values():
            for panel in board["panels"]:
                exprs = [substitute(target["expr"]) for target in panel["targets"]]
                if not any(prometheus.query(expr) for expr in exprs):
                    empty.append(f"{board['title']} / {panel['title']}: {exprs}")
        assert empty == []
        ratio = prometheus.query("modeltap_exporter_read_duration_seconds")
        assert ratio
        assert all(math.isfinite(float(s["value"][1])) for s in ratio)
    finally:
        traffic.stop.set()
        sender.join(30)
