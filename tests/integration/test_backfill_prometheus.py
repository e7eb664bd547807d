"""Backfilled history in the real Prometheus: promtool blocks copied into its data directory,
and every drift and performance panel with a value at every step of the backfilled range."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors import backfill, fitting
from detectors.backfill_pool import Job, run
from detectors.settings import ModelSettings
from exporters.dashboards.render import dashboards
from exporters.openmetrics import write_openmetrics
from modeltap.schema import FAMILIES
from modeltap.store import SqlStore
from tests.conftest import service_env
from tests.detectors.traffic import MODEL, Traffic, config, write

# Prometheus keeps the real clock: history must lie inside its retention and before its head.
pytestmark = pytest.mark.real_clock

HOUR = timedelta(hours=1)
# Two uncorrelated numerical features: half the variance keeps one principal component, so
# the reconstruction error can move (the default 0.65 keeps both and reconstructs exactly).
CONFIG = config(multivariate={"variance": 0.5})
SETTINGS = ModelSettings.from_config(CONFIG, MODEL)


def query_range(base: str, expr: str, start: float, end: float, step: int) -> list[Any]:
    params = {"query": expr, "start": f"{start:.0f}", "end": f"{end:.0f}", "step": str(step)}
    url = f"{base}/api/v1/query_range?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[Any] = body["data"]["result"]
    return result


def history(tmp_path: Path, start: datetime) -> list[Any]:
    """Six hours of two versions with labels, backfilled; results as stored. The model is
    calibrated and its reference labelled, so the estimation family runs beside the rest."""
    store = SqlStore.open(f"sqlite:///{tmp_path / 'p.db'}", migrate=True)
    at = [start + i * HOUR for i in range(7)]
    write(store, [Traffic(at[0] - 2 * HOUR, at[0], seed=1, calibrated=True, label_share=1.0)])
    rows = fitting.rows_from_store(store, SETTINGS, at[0] - 2 * HOUR, at[0], None)
    fitting.save(
        store, SETTINGS, fitting.fit_rows(SETTINGS, rows), version="", source="t", now=at[0]
    )
    write(
        store,
        [
            Traffic(at[0], at[6], seed=2, label_share=0.7, calibrated=True),
            Traffic(
                at[0], at[6], seed=3, version="v2", per_hour=200, label_share=0.7, calibrated=True
            ),
        ],
    )
    found = backfill.windows(at[0], at[6], HOUR)
    source = backfill.StoreSource(store, SETTINGS)
    observed = source.event_counts(at[0], at[6], HOUR)
    run(Job(CONFIG, MODEL, HOUR, found[-1].end, FAMILIES), store, source, found, observed)
    results = store.results_between(MODEL, at[0], at[6])
    store.close()
    return results


def test_backfilled_history_reaches_every_drift_and_performance_panel(tmp_path: Path) -> None:
    base = service_env("MONITOR_TEST_PROMETHEUS")
    data = Path(service_env("MONITOR_TEST_PROMETHEUS_DIR")) / "data"
    # Ends three hours back, so the blocks stay clear of the head Prometheus is writing.
    end = datetime.fromtimestamp(time.time() // 3600 * 3600, UTC) - 3 * HOUR
    start = end - 6 * HOUR
    model = f"backfill{uuid.uuid4().hex[:8]}"  # its own series in the shared Prometheus
    results = [replace(result, model=model) for result in history(tmp_path, start)]
    metrics = tmp_path / "history.om"
    assert write_openmetrics(results, metrics, step=timedelta(minutes=1)) > 20
    blocks = tmp_path / "blocks"
    check = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(metrics), str(blocks)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    for block in blocks.iterdir():
        shutil.copytree(block, data / block.name)
    first, last = (start + HOUR).timestamp(), end.timestamp()
    probe = f'modeltap_feature_drift_score{{model="{model}"}}'
    deadline = time.monotonic() + 180  # blocks are picked up on the next reload, ~1 min
    while time.monotonic() < deadline and not query_range(base, probe, first, last, 300):
        time.sleep(2)
    assert query_range(base, probe, first, last, 300), "Prometheus never loaded the blocks"
    detectors = {r.detector for r in results if r.status == "ok"}
    assert {"estimated_accuracy", "realized_accuracy", "reconstruction_error"} <= detectors
    boards = dashboards(CONFIG)
    titles = [panel["title"] for name in boards for panel in boards[name]["panels"]]
    assert "Accuracy before labels: estimated and realized" in titles
    assert "Multivariate drift" in titles
    gaps = []
    for name in ("modeltap-drift", "modeltap-performance"):
        for panel in boards[name]["panels"]:
            exprs = [
                target["expr"]
                .replace("$model", model)
                .replace("$version", ".*")
                .replace("$__rate_interval", "5m")
                for target in panel["targets"]
            ]
            for step in (30, 900):  # Grafana's step for this range on a panel, and a coarse one
                expected = int((last - first) // step) + 1
                found: set[float] = set()
                for expr in exprs:
                    for series in query_range(base, expr, first, last, step):
                        found |= {float(moment) for moment, _ in series["values"]}
                if len(found) != expected:
                    gaps.append(f"{panel['title']} @{step}s: {len(found)}/{expected} steps")
    assert gaps == []
