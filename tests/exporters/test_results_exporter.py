"""The scrape-time collector over results the real detectors stored, on both databases."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from detectors import fitting
from detectors.runner import Runner
from detectors.settings import ModelSettings
from exporters.metrics import samples
from exporters.scrape import ResultsExporter
from exporters.source import ExportPlan
from modeltap.schema import FAMILIES
from modeltap.store import SqlStore
from tests.detectors.traffic import MODEL, Traffic, config, write

T0 = datetime(2026, 11, 25, tzinfo=UTC)
CONFIG = config(thresholds={"accuracy_min": 0.8, "latency_p99_ms": 500})
SETTINGS = ModelSettings.from_config(CONFIG, MODEL)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def detected(store: SqlStore) -> datetime:
    """Reference 00-02h; v1 as before and v2 drifted (older callers) 02-05h, labelled."""
    write(store, [Traffic(at(0), at(2), seed=1)])
    rows = fitting.rows_from_store(store, SETTINGS, at(0), at(2), None)
    fitting.save(
        store, SETTINGS, fitting.fit_rows(SETTINGS, rows), version="", source="t", now=at(2)
    )
    write(
        store,
        [
            Traffic(at(2), at(5), seed=2, label_share=0.8),
            Traffic(at(2), at(5), seed=3, version="v2", age_mean=60.0, per_hour=200,
                    accuracy=0.6, label_share=0.8),
        ],
    )  # fmt: skip
    now = at(5) + timedelta(minutes=1)
    outcomes = Runner(store, [SETTINGS], owner="t").run_all(now)
    assert {outcome.status for outcome in outcomes} == {"ok"}
    return now


def scrape(store: SqlStore, now: datetime) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ResultsExporter(store, ExportPlan.from_config(CONFIG), lambda: now))
    return registry


def test_every_stored_result_becomes_series_with_its_value(store: SqlStore) -> None:
    now = detected(store)
    registry = scrape(store, now)
    latest = store.latest_values(now - CONFIG.export_lookback)
    # No result the detectors produce is silently left out of the exposition.
    assert {r.detector for r in latest if not samples(r)} == set()
    assert {r.version for r in latest} == {"v1", "v2"}

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        found = registry.get_sample_value(name, labels)
        assert found is not None, (name, labels)
        return found

    p99 = next(r for r in latest if r.detector == "latency_p99_ms" and r.version == "v1")
    labels = {"model": MODEL, "version": "v1"}
    assert value("modeltap_window_latency_seconds", labels | {"percentile": "99"}) == pytest.approx(
        (p99.score or 0.0) / 1000
    )
    age = {"model": MODEL, "feature": "age"}
    assert value("modeltap_feature_drifted", age | {"version": "v2"}) == 1.0
    assert value("modeltap_feature_drifted", age | {"version": "v1"}) == 0.0
    assert value("modeltap_feature_drift_score", age | {"version": "v2", "test": "psi"}) > 0.2
    assert value("modeltap_performance_score", labels | {"metric": "accuracy"}) > 0.8
    ab = {"model": MODEL, "version": "v2", "baseline": "v1", "test": "accuracy"}
    assert value("modeltap_ab_pvalue", ab) < 0.05
    assert value("modeltap_ab_worse", ab) == 1.0
    assert value("modeltap_label_coverage_ratio", labels) == pytest.approx(0.8, abs=0.1)
    assert value("modeltap_results_window_end_timestamp_seconds", labels) == at(5).timestamp()
    for detector in FAMILIES:
        job = {"model": MODEL, "detector": detector}
        assert value("modeltap_detector_recent_runs", job) == 1.0
        assert value("modeltap_detector_staleness_seconds", job) == 0.0
        assert value("modeltap_detector_last_success_timestamp_seconds", job) == now.timestamp()
    assert value("modeltap_exporter_store_up") == 1.0
    assert value("modeltap_exporter_capped_features", {"model": MODEL}) == 0.0


def test_promtool_finds_nothing_to_say_about_the_exposition(store: SqlStore) -> None:
    now = detected(store)
    exposition = generate_latest(scrape(store, now))
    assert b"modeltap_feature_drift_score{" in exposition
    promtool = shutil.which("promtool")
    assert promtool, "promtool must be on PATH (scripts/services.sh installs it)"
    linted = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert (linted.returncode, linted.stdout, linted.stderr) == (0, b"", b"")
