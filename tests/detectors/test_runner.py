"""The runner over a real store: due windows, late events, late labels, failures, records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors import fitting
from detectors.reads import Reads
from detectors.runner import JobOutcome, Runner
from detectors.settings import ModelSettings
from detectors.windows import Window
from modeltap.schema import DetectorResult, EventBatch, LabelRecord
from modeltap.store import SqlStore
from tests.detectors.traffic import MODEL, Traffic, config, write

T0 = datetime(2026, 11, 25, tzinfo=UTC)
HOUR = timedelta(hours=1)
SETTINGS = ModelSettings.from_config(config(), MODEL)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def hour(start: float) -> Window:
    return Window(at(start), at(start + 1))


def prepare(store: SqlStore) -> EventBatch:
    """Reference traffic 00:00-02:00 fitted as the profile; live traffic 02:00-05:30."""
    write(store, [Traffic(at(0), at(2), seed=1)])
    profile = fitting.fit_rows(
        SETTINGS, fitting.rows_from_store(store, SETTINGS, at(0), at(2), None)
    )
    fitting.save(store, SETTINGS, profile, version="", source="test", now=at(2))
    return write(store, [Traffic(at(2), at(5.5), seed=2, age_mean=40.0)])


def labelled(request_id: str, value: int, arrived: datetime) -> LabelRecord:
    return LabelRecord(
        value=value,
        ts=arrived,
        received_at=arrived,
        request_id=request_id,
        row_index=0,
        model=MODEL,
    )


def runner(store: SqlStore, owner: str = "test") -> Runner:
    return Runner(store, [SETTINGS], owner=owner)


def by_job(outcomes: list[JobOutcome]) -> dict[str, JobOutcome]:
    return {outcome.detector: outcome for outcome in outcomes}


def find(
    results: list[DetectorResult], detector: str, window: Window, feature: str = ""
) -> DetectorResult:
    (found,) = [
        r
        for r in results
        if (r.detector, r.feature, r.segment, r.window_start)
        == (detector, feature, "", window.start)
    ]
    return found


def test_first_run_computes_every_window_with_traffic_then_only_what_is_new(
    store: SqlStore,
) -> None:
    prepare(store)
    first = by_job(runner(store).run_all(at(5.5)))
    for detector, outcome in first.items():
        assert outcome.status == "ok", (detector, outcome.error)
        # 00:00-02:00 is the reference traffic: the model served then too.
        assert outcome.windows == tuple(hour(h) for h in range(6)), detector
    again = by_job(runner(store).run_all(at(5.75)))
    assert {outcome.windows for outcome in again.values()} == {(hour(5),)}
    later = by_job(runner(store).run_all(at(6.25)))
    assert {outcome.windows for outcome in later.values()} == {(hour(5), hour(6))}
    records = store.window_records(MODEL, "drift", T0)
    assert [(r.window_start, r.partial) for r in records][-2:] == [(at(5), False), (at(6), True)]
    assert all(r.computations == 1 for r in records if r.window_end <= at(5))
    health = {h.detector: h for h in store.run_health(MODEL)}
    assert {h.runs for h in health.values()} == {3}
    assert {h.failures for h in health.values()} == {0}


def test_results_are_stored_with_their_window(store: SqlStore) -> None:
    prepare(store)
    runner(store).run_all(at(5.5))
    latest = {(r.detector, r.feature, r.segment, r.version): r for r in store.latest_results(MODEL)}
    p99 = latest[("latency_p99_ms", "", "", "v1")]
    assert (p99.window_start, p99.window_end) == (at(5), at(6))
    assert p99.details["partial"] is True
    assert p99.threshold == 1000.0
    drift = latest[("feature_drift", "age", "", "v1")]
    assert drift.direction == "higher"
    assert drift.details["test"] == "psi"
    assert drift.status == "ok"
    assert not drift.alert


def test_late_events_reopen_their_window(store: SqlStore) -> None:
    prepare(store)
    runner(store).run_all(at(5.5))
    write(store, [Traffic(at(3), at(4), per_hour=50, seed=9)])
    outcomes = by_job(runner(store).run_all(at(5.6)))
    for detector, outcome in outcomes.items():
        assert outcome.windows == (hour(3), hour(5)), detector
    (record,) = [
        r for r in store.window_records(MODEL, "operations", T0) if r.window_start == at(3)
    ]
    assert record.computations == 2


def test_late_labels_reopen_performance_windows_within_the_horizon(store: SqlStore) -> None:
    written = prepare(store)
    first = by_job(runner(store).run_all(at(5.5)))
    before = find(first["performance"].results, "label_coverage", hour(3))
    assert before.score == 0.0
    assert find(first["performance"].results, "accuracy", hour(3)).status == "insufficient_data"
    # Ground truth for the 03:00-04:00 predictions arrives at 07:00, 3 to 4 hours late.
    late = [p for p in written.predictions if at(3) <= p.ts < at(4)]
    store.write(EventBatch(labels=[labelled(p.request_id, int(p.prediction), at(7)) for p in late]))
    outcomes = by_job(runner(store).run_all(at(7.25)))
    assert outcomes["performance"].windows == (hour(3), hour(5), hour(6), hour(7))
    assert outcomes["ab"].windows == (hour(3), hour(5), hour(6), hour(7))
    assert outcomes["drift"].windows == (hour(5), hour(6), hour(7))
    results = outcomes["performance"].results
    assert find(results, "label_coverage", hour(3)).score == 1.0
    accuracy = find(results, "accuracy", hour(3))
    assert (accuracy.status, accuracy.score) == ("ok", 1.0)  # labels equal to the predictions
    delay = find(results, "label_delay_s", hour(3))
    assert delay.score is not None
    assert 3 * 3600 <= delay.score <= 4 * 3600
    assert delay.details["max_s"] <= 4 * 3600
    # The same labels arriving after the horizon (1 day) change nothing any more.
    early = [p for p in written.predictions if at(2) <= p.ts < at(3)]
    store.write(EventBatch(labels=[labelled(p.request_id, 0, at(40)) for p in early]))
    final = by_job(runner(store).run_all(at(40.5)))
    assert hour(2) not in final["performance"].windows


def test_a_failing_job_is_recorded_and_the_others_run(store: SqlStore) -> None:
    prepare(store)
    store.put_reference(MODEL, "", {"format": 99}, source="broken", created_at=at(3))
    outcomes = by_job(runner(store).run_all(at(5.5)))
    assert outcomes["drift"].status == "error"
    assert outcomes["drift"].error is not None
    assert "fit it again" in outcomes["drift"].error
    assert outcomes["operations"].status == "ok"
    assert outcomes["performance"].status == "ok"
    health = {h.detector: h for h in store.run_health(MODEL)}
    assert (health["drift"].failures, health["drift"].last_status) == (1, "error")
    assert health["drift"].last_error is not None
    assert "Traceback" in health["drift"].last_error
    assert health["operations"].failures == 0
    # Fixed reference: the failed windows are still due and get computed.
    profile = fitting.fit_rows(
        SETTINGS, fitting.rows_from_store(store, SETTINGS, at(0), at(2), None)
    )
    fitting.save(store, SETTINGS, profile, version="", source="fixed", now=at(5.6))
    retry = runner(store).run(MODEL, "drift", at(5.6))
    assert retry.status == "ok"
    assert retry.windows[0] == hour(0)
    assert store.run_health(MODEL)[1].consecutive_failures == 0


def test_a_version_specific_reference_wins_over_the_models(store: SqlStore) -> None:
    prepare(store)
    shifted = fitting.fit_rows(
        SETTINGS, fitting.rows_from_store(store, SETTINGS, at(0), at(2), None)
    )
    fitting.save(store, SETTINGS, shifted, version="v1", source="v1 only", now=at(2))
    write(store, [Traffic(at(5), at(5.5), version="v2", age_mean=55.0, seed=4)])
    outcome = runner(store).run(MODEL, "drift", at(5.5))
    flags = {
        (r.version, r.window_start): r.alert
        for r in outcome.results
        if (r.detector, r.feature, r.segment) == ("feature_drift", "age", "")
    }
    assert flags[("v1", at(5))] is False
    assert flags[("v2", at(5))] is True


def test_a_pass_shares_reads_within_a_budget_and_a_job_reads_only_what_it_needs(
    store: SqlStore,
) -> None:
    prepare(store)
    shared = Reads(store, shared=True, budget=2000)
    first = shared.rows(SETTINGS, at(2), at(3), features=[], labels=False)
    assert shared.rows(SETTINGS, at(2), at(3), features=["age"], labels=True) is first
    assert set(first.features.columns) == {"age", "tenure", "plan"}
    assert first.label is not None
    shared.rows(SETTINGS, at(3), at(4), features=[], labels=False)
    shared.rows(SETTINGS, at(4), at(5), features=[], labels=False)
    # About 400 rows a window: a budget of 2000 keeps them; 400 would keep only the newest.
    assert shared.rows(SETTINGS, at(2), at(3), features=[], labels=False) is first
    tight = Reads(store, shared=True, budget=400)
    again = tight.rows(SETTINGS, at(2), at(3), features=[], labels=False)
    tight.rows(SETTINGS, at(3), at(4), features=[], labels=False)
    assert tight.rows(SETTINGS, at(2), at(3), features=[], labels=False) is not again
    own = Reads(store).rows(SETTINGS, at(2), at(3), features=["plan"], labels=True)
    assert list(own.features.columns) == ["plan"]
    assert len(own) == len(first)
