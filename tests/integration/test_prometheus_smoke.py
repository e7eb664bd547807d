"""The real Prometheus from scripts/services.sh, and promtool on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest, start_http_server

pytestmark = pytest.mark.integration


def query(prometheus_url: str, expression: str) -> list[dict[str, Any]]:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_prometheus_is_ready_and_answers_queries(prometheus_url: str) -> None:
    with urllib.request.urlopen(f"{prometheus_url}/-/ready", timeout=10) as response:
        assert response.status == 200
    assert query(prometheus_url, "vector(1)")[0]["value"][1] == "1"


def test_promtool_lints_expositions() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool must be on PATH (scripts/services.sh installs it)"
    registry = CollectorRegistry()
    Counter("modeltap_smoke_events", "Events seen by the smoke test.", registry=registry).inc()
    good = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        check=False,
    )
    assert (good.returncode, good.stdout, good.stderr) == (0, b"", b"")
    # A counter without _total and without HELP is what the lint exists to catch.
    bad = b"# TYPE modeltap_bad counter\nmodeltap_bad 1\n"
    linted = subprocess.run(
        [promtool, "check", "metrics"], input=bad, capture_output=True, check=False
    )
    assert linted.returncode != 0


def test_prometheus_scrapes_a_target_dropped_into_its_discovery_directory(
    prometheus_url: str,
) -> None:
    directory = os.environ.get("MONITOR_TEST_PROMETHEUS_DIR")
    if directory is None:
        pytest.fail(
            "MONITOR_TEST_PROMETHEUS_DIR is not set; start Prometheus with scripts/services.sh"
        )
    registry = CollectorRegistry()
    marker = f"smoke_{uuid.uuid4().hex[:8]}"
    Counter(
        "modeltap_smoke_scrapes", "Scraped by the smoke test.", ["run"], registry=registry
    ).labels(marker).inc(3)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    port = server.server_address[1]
    target = Path(directory) / "targets" / f"{marker}.json"
    target.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"smoke": marker}}]))
    try:
        deadline = time.monotonic() + 60
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not found:
            found = query(prometheus_url, f'modeltap_smoke_scrapes_total{{run="{marker}"}}')
            time.sleep(0.5)
        assert found, "Prometheus never scraped the target"
        assert found[0]["value"][1] == "3"
    finally:
        target.unlink()
        server.shutdown()
        thread.join()
