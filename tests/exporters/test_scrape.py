"""The collector against an in-memory source: cardinality cap, run health, a failing store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest

from exporters.scrape import ResultsExporter
from exporters.source import ExportPlan
from modeltap.errors import StorageUnavailableError
from modeltap.schema import DetectorResult, DetectorRun, LatestValue
from modeltap.store import SqlStore

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
LOOKBACK = timedelta(hours=2)


@dataclass
class MemorySource:
    """The exporter's two reads over lists; ``down`` makes both fail like a lost database."""

    results: list[LatestValue] = field(default_factory=list)
    runs: list[DetectorRun] = field(default_factory=list)
    down: bool = False
    asked: list[datetime] = field(default_factory=list)

    def latest_values(self, since: datetime) -> list[LatestValue]:
        self.asked.append(since)
        if self.down:
            raise StorageUnavailableError("database down")
        return [r for r in self.results if r.window_end > since]

    def runs_since(self, since: datetime) -> list[DetectorRun]:
        return [r for r in self.runs if r.started_at > since]


def result(
    detector: str, feature: str = "", score: float = 0.3, alert: bool = False
) -> DetectorResult:
    start = NOW - timedelta(hours=1)
    return DetectorResult("m", "v1", detector, start, NOW, NOW, "ok", score, 0.2, "higher", alert,
                          feature=feature)  # fmt: skip


def value(detector: str, feature: str = "", score: float = 0.3, alert: bool = False) -> LatestValue:
    return LatestValue("m", "v1", detector, feature, NOW, score, alert)


def registry_for(source: MemorySource, plan: ExportPlan) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ResultsExporter(source, plan, lambda: NOW))
    return registry


def test_features_past_the_cap_are_left_out_configured_ones_first() -> None:
    names = ["e", "d", "c", "b", "a"]
    source = MemorySource([value("psi", name) for name in names] + [value("dataset_drift")])
    plan = ExportPlan(LOOKBACK, max_features=2, feature_order={"m": ["d", "b"]})
    registry = registry_for(source, plan)
    exported = {
        name
        for name in names
        if registry.get_sample_value(
            "modeltap_feature_drift_score",
            {"model": "m", "version": "v1", "feature": name, "test": "psi"},
        )
        is not None
    }
    assert exported == {"d", "b"}
    assert registry.get_sample_value("modeltap_exporter_capped_features", {"model": "m"}) == 3.0
    # Model-level series are never capped.
    share = {"model": "m", "version": "v1"}
    assert registry.get_sample_value("modeltap_dataset_drift_share_ratio", share) == 0.3
    # Unconfigured features follow in name order.
    plan = ExportPlan(LOOKBACK, max_features=3, feature_order={"m": ["d"]})
    text = generate_latest(registry_for(source, plan)).decode()
    assert {n for n in names if f'feature="{n}"' in text} == {"d", "a", "b"}


def run(minutes_ago: float, status: str, detector: str = "drift") -> DetectorRun:
    moment = NOW - timedelta(minutes=minutes_ago)
    return DetectorRun("m", detector, moment, 1500.0, status, moment)  # type: ignore[arg-type]


def test_run_health_counts_failures_in_a_row_and_staleness_from_the_clock() -> None:
    source = MemorySource(
        runs=[run(30, "ok"), run(20, "error"), run(10, "error"), run(200, "ok", "quality")]
    )
    plan = ExportPlan(LOOKBACK, jobs=[("m", "drift"), ("m", "quality")])
    value = registry_for(source, plan).get_sample_value
    drift = {"model": "m", "detector": "drift"}
    assert value("modeltap_detector_recent_runs", drift) == 3.0
    assert value("modeltap_detector_recent_failures", drift) == 2.0
    assert value("modeltap_detector_consecutive_failures", drift) == 2.0
    assert value("modeltap_detector_staleness_seconds", drift) == 30 * 60
    assert value("modeltap_detector_last_run_duration_seconds", drift) == 1.5
    last = (NOW - timedelta(minutes=10)).timestamp()
    assert value("modeltap_detector_last_run_timestamp_seconds", drift) == last
    # A configured job with no run inside the lookback is as stale as the lookback is long.
    quality = {"model": "m", "detector": "quality"}
    assert value("modeltap_detector_staleness_seconds", quality) == LOOKBACK.total_seconds()
    assert value("modeltap_detector_recent_runs", quality) == 0.0
    assert value("modeltap_detector_last_success_timestamp_seconds", quality) is None
    # Every read (one per scrape here) covers exactly the lookback before the clock's now.
    assert set(source.asked) == {NOW - LOOKBACK}


def test_a_store_that_cannot_be_read_gives_store_up_0_not_a_failed_scrape() -> None:
    source = MemorySource([value("psi", "x")], down=True)
    registry = registry_for(source, ExportPlan(LOOKBACK))
    assert registry.get_sample_value("modeltap_exporter_store_up") == 0.0
    assert b"modeltap_feature_drift_score{" not in generate_latest(registry)
    source.down = False
    assert registry.get_sample_value("modeltap_exporter_store_up") == 1.0


def test_registering_reads_nothing_and_every_scrape_reads_again() -> None:
    source = MemorySource([value("error_rate", score=0.01)])
    registry = registry_for(source, ExportPlan(LOOKBACK))
    assert source.asked == []
    labels = {"model": "m", "version": "v1"}
    assert registry.get_sample_value("modeltap_window_error_ratio", labels) == 0.01
    source.results = [value("error_rate", score=0.07)]
    assert registry.get_sample_value("modeltap_window_error_ratio", labels) == 0.07


def test_replicas_on_one_postgresql_answer_the_same(postgres_database: str) -> None:
    first = SqlStore.open(postgres_database, migrate=True)
    second = SqlStore.open(postgres_database)
    first.upsert_results([result("psi", "age"), result("feature_drift", "age", alert=True)])
    first.record_run(run(5, "ok"))
    try:
        plan = ExportPlan(LOOKBACK, jobs=[("m", "drift")])
        answers = [
            generate_latest(registry_for(store, plan)).decode()  # type: ignore[arg-type]
            for store in (first, second)
        ]
    finally:
        first.close()
        second.close()
    # Read durations differ by nature; everything else must be identical.
    same = [
        "\n".join(line for line in text.splitlines() if "read_duration" not in line)
        for text in answers
    ]
    assert same[0] == same[1]
    assert 'modeltap_feature_drifted{feature="age",model="m",version="v1"} 1.0' in same[0]
