"""The estimation and multivariate families in the live path: runner, backfill, exporter.

The model is calibrated (score = its chance of being right), so CBPE's estimate is honest;
from 05:00 the callers' ages crowd around 40, where the model is unsure, and its accuracy
falls from about 0.77 to about 0.57. The estimate must see that before any label arrives.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from detectors import backfill, fitting
from detectors.profile import Profile
from detectors.runner import Planned, Runner
from detectors.settings import ModelSettings
from detectors.windows import Window
from exporters.openmetrics import write_openmetrics
from exporters.scrape import ResultsExporter
from exporters.source import ExportPlan
from modeltap.schema import DetectorResult
from modeltap.store import SqlStore
from tests.detectors.traffic import MODEL, Traffic, config, write

T0 = datetime(2026, 11, 25, tzinfo=UTC)
CONFIG = config()
SETTINGS = ModelSettings.from_config(CONFIG, MODEL)
SHIFTED = Window(T0 + timedelta(hours=5), T0 + timedelta(hours=6))
NORMAL = Window(T0 + timedelta(hours=4), T0 + timedelta(hours=5))


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def prepare(store: SqlStore, *, reference_labels: float = 1.0) -> Profile:
    """A labelled reference 00-04h, fitted and stored; live traffic 04-06h without labels."""
    write(
        store,
        [
            Traffic(
                at(0), at(4), seed=1, calibrated=True, per_hour=1000, label_share=reference_labels
            )
        ],
    )
    rows = fitting.rows_from_store(store, SETTINGS, at(0), at(4), None)
    profile = fitting.fit_rows(SETTINGS, rows)
    fitting.save(store, SETTINGS, profile, version="", source="t", now=at(4))
    write(
        store,
        [
            Traffic(at(4), at(5), seed=2, calibrated=True, per_hour=1000),
            Traffic(at(5), at(6), seed=3, calibrated=True, per_hour=1000, age_sd=2.0),
        ],
    )
    return profile


def find(results: list[DetectorResult], detector: str, window: Window) -> DetectorResult:
    return next(r for r in results if r.detector == detector and r.window_start == window.start)


def test_the_estimate_drops_on_the_shifted_window_before_any_label(store: SqlStore) -> None:
    profile = prepare(store)
    assert profile.estimators is not None
    assert profile.estimators.cbpe is not None
    band = profile.estimators.cbpe.bands["accuracy"]
    outcome = Runner(store, [SETTINGS], owner="t").run(
        MODEL, "estimation", at(6) + timedelta(minutes=1)
    )
    assert outcome.status == "ok", outcome.error
    normal = find(outcome.results, "estimated_accuracy", NORMAL)
    shifted = find(outcome.results, "estimated_accuracy", SHIFTED)
    assert normal.score is not None
    assert shifted.score is not None
    assert 0.72 < normal.score < 0.82
    assert 0.5 < shifted.score < 0.62
    # Judged by the reference band's lower bound, recorded with its direction.
    assert shifted.threshold == band.lower == normal.threshold
    assert (shifted.direction, shifted.alert, normal.alert) == ("lower", True, False)
    assert shifted.details["threshold_source"] == "reference_band"
    assert shifted.details["confidence_lower"] < shifted.score < shifted.details["confidence_upper"]
    # No labels yet for the live hours: no realized figure (the reference hours have one).
    realized = {r.window_start for r in outcome.results if r.detector.startswith("realized_")}
    assert realized == {at(hour) for hour in range(4)}


def test_late_labels_put_the_realized_figure_beside_the_estimate(store: SqlStore) -> None:
    prepare(store)
    runner = Runner(store, [SETTINGS], owner="t")
    runner.run(MODEL, "estimation", at(6) + timedelta(minutes=1))
    # The shifted hour's labels arrive later: the window is computed again with them.
    write(store, [Traffic(at(5), at(6), seed=3, calibrated=True, per_hour=1000, age_sd=2.0,
                          label_share=1.0, label_at=at(8))])  # fmt: skip
    again = runner.run(MODEL, "estimation", at(8) + timedelta(minutes=1))
    assert again.status == "ok", again.error
    estimated = find(again.results, "estimated_accuracy", SHIFTED)
    realized = find(again.results, "realized_accuracy", SHIFTED)
    assert realized.score is not None
    assert estimated.score is not None
    assert abs(realized.score - estimated.score) < 0.05  # the estimate tracked the truth
    assert realized.score < 0.62
    assert realized.alert
    assert realized.threshold == estimated.threshold
    assert realized.details["kind"] == "realized"
    assert estimated.details["kind"] == "estimated"


def test_a_reference_without_labels_skips_estimation_with_its_reason(store: SqlStore) -> None:
    prepare(store, reference_labels=0.0)
    outcomes = Runner(store, [SETTINGS], owner="t").run_all(at(6) + timedelta(minutes=1))
    by_job = {outcome.detector: outcome for outcome in outcomes}
    assert {by_job["estimation"].status, by_job["multivariate"].status} == {"ok"}
    skipped = find(by_job["estimation"].results, "estimated_accuracy", SHIFTED)
    assert (skipped.status, skipped.score, skipped.alert) == ("insufficient_data", None, False)
    assert "the reference has 0 rows with a label" in skipped.details["reason"]
    # age and tenure are independent: PCA keeps both components and could never alert.
    pca = find(by_job["multivariate"].results, "reconstruction_error", SHIFTED)
    assert pca.status == "insufficient_data"
    assert "lower detectors.multivariate.variance" in pca.details["reason"]


def test_a_backfilled_window_equals_the_live_one(store: SqlStore) -> None:
    prepare(store)
    now = at(6)
    live = Runner(store, [SETTINGS], owner="t").compute(
        SETTINGS, "estimation", Planned(SHIFTED), now
    )
    data = backfill.StoreSource(store, SETTINGS).read(SHIFTED)
    profiles = backfill.stored_profiles(store, MODEL, list(data.rows))
    computed = backfill.compute(SETTINGS, SHIFTED, data, profiles, now=now)
    assert set(computed) >= {"estimation", "multivariate"}
    assert [(r.detector, r.score, r.threshold, r.alert) for r in computed["estimation"]] == [
        (r.detector, r.score, r.threshold, r.alert) for r in live
    ]
    assert find(computed["estimation"], "estimated_accuracy", SHIFTED).alert


def test_the_exporter_publishes_estimate_realized_and_alert(store: SqlStore) -> None:
    prepare(store)
    runner = Runner(store, [SETTINGS], owner="t")
    write(store, [Traffic(at(5), at(6), seed=3, calibrated=True, per_hour=1000, age_sd=2.0,
                          label_share=1.0, label_at=at(6))])  # fmt: skip
    now = at(6) + timedelta(minutes=1)
    assert {o.status for o in runner.run_all(now)} == {"ok"}
    registry = CollectorRegistry()
    registry.register(ResultsExporter(store, ExportPlan.from_config(CONFIG), lambda: now))
    labels = {"model": MODEL, "version": "v1", "metric": "accuracy"}
    name = "modeltap_performance_estimated_score"
    estimated = registry.get_sample_value(name, labels | {"kind": "estimated"})
    realized = registry.get_sample_value(name, labels | {"kind": "realized"})
    assert estimated is not None
    assert realized is not None
    assert estimated < 0.62
    assert abs(estimated - realized) < 0.05
    alert = "modeltap_performance_estimated_alert"
    assert registry.get_sample_value(alert, labels | {"kind": "estimated"}) == 1.0
    # The threshold comes back from the store with the value: the band's lower bound,
    # which the estimate fell below.
    stored = {
        r.detector: r.threshold
        for r in store.latest_results(MODEL)
        if r.version == "v1" and r.segment == "" and r.feature == ""
    }
    threshold = registry.get_sample_value("modeltap_performance_estimated_threshold", labels)
    assert threshold == stored["estimated_accuracy"]
    assert threshold is not None
    assert estimated < threshold
    exposition = generate_latest(registry)
    promtool = shutil.which("promtool")
    assert promtool, "promtool must be on PATH (scripts/services.sh installs it)"
    linted = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert (linted.returncode, linted.stdout, linted.stderr) == (0, b"", b"")


NEW_FAMILIES = ("modeltap_performance_estimated_", "modeltap_multivariate_")


def test_the_openmetrics_history_ends_on_what_the_scrape_serves(
    store: SqlStore, tmp_path: Path
) -> None:
    """`monitor backfill --openmetrics` writes the live exporter's series, thresholds too."""
    prepare(store)
    write(store, [Traffic(at(5), at(6), seed=3, calibrated=True, per_hour=1000, age_sd=2.0,
                          label_share=1.0, label_at=at(6))])  # fmt: skip
    now = at(6) + timedelta(minutes=1)
    assert {o.status for o in Runner(store, [SETTINGS], owner="t").run_all(now)} == {"ok"}
    registry = CollectorRegistry()
    registry.register(ResultsExporter(store, ExportPlan.from_config(CONFIG), lambda: now))
    scraped = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name.startswith(NEW_FAMILIES)
    }
    path = tmp_path / "history.om"
    write_openmetrics(store.results_between(MODEL, at(4), at(6)), path)
    last: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, float]] = {}
    # prometheus_client's OpenMetrics parser (strict: it refuses malformed exposition) has no
    # annotations.
    parsed = text_string_to_metric_families(path.read_text())  # type: ignore[no-untyped-call]
    for family in parsed:
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            moment = float(sample.timestamp or 0)
            if sample.name.startswith(NEW_FAMILIES) and moment >= last.get(key, (-1.0, 0.0))[0]:
                last[key] = (moment, sample.value)
    names = {name for name, _ in scraped}
    assert {
        "modeltap_performance_estimated_score",
        "modeltap_performance_estimated_threshold",
        "modeltap_performance_estimated_alert",
    } <= names
    assert set(last) == set(scraped)
    # A series' last point in the history is its newest window's value: what is scraped.
    assert {key: value for key, (_, value) in last.items()} == scraped


@pytest.mark.parametrize("kind", ["estimated", "realized"])
def test_the_family_runs_in_every_pass_of_detect_once(store: SqlStore, kind: str) -> None:
    """``run_all`` (what ``detect --once`` and the daemon call) carries the new jobs."""
    prepare(store)
    if kind == "realized":
        write(store, [Traffic(at(4), at(5), seed=2, calibrated=True, per_hour=1000,
                              label_share=1.0, label_at=at(5))])  # fmt: skip
    outcomes = Runner(store, [SETTINGS], owner="t").run_all(at(6) + timedelta(minutes=1))
    results = next(o for o in outcomes if o.detector == "estimation").results
    row = find(results, f"{kind}_accuracy", NORMAL)
    assert row.status == "ok"
    assert row.score is not None
    assert not row.alert
