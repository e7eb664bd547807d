"""A Prometheus of one test's own: its config, its rules, its data (backfilled if asked)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.collector.conftest import free_port


class PrivatePrometheus:
    """Scrapes the given jobs every 2 s and evaluates ``rules`` every 2 s."""

    def __init__(self, jobs: dict[str, list[str]], rules: Path, openmetrics: str = "") -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="modeltap-prom-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = self.directory / "data"
        data.mkdir()
        if openmetrics:
            # Series that only exist in Kubernetes (cAdvisor) are written as history blocks.
            source = self.directory / "backfill.om"
            source.write_text(openmetrics)
            subprocess.run(
                ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        shutil.copy(rules, self.directory / "rules.yml")
        config = {
            "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
            "rule_files": [str(self.directory / "rules.yml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]}
                for job, targets in jobs.items()
            ],
        }
        (self.directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (self.directory / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={self.directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"private Prometheus not ready; see {self.directory}")

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expr)["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get("/api/v1/alerts")["alerts"]
        return found

    def targets_up(self) -> dict[str, bool]:
        active = self.get("/api/v1/targets")["activeTargets"]
        return {t["labels"]["job"]: t["health"] == "up" for t in active}

    def scrape_errors(self) -> dict[str, str]:
        active = self.get("/api/v1/targets")["activeTargets"]
        return {t["labels"]["job"]: t["lastError"] for t in active}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)
