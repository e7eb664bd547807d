"""What the exporter reads at scrape time, on SQLite and the real PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from modeltap.schema import DetectorResult, DetectorRun
from modeltap.store import SqlStore
from tests.modeltap.store.factories import T0
from tests.modeltap.store.plans import plan, statements_sent

HOUR = timedelta(hours=1)


def result(
    hours: float, score: float | None, *, feature: str = "age", segment: str = ""
) -> DetectorResult:
    start = T0 + timedelta(hours=hours)
    return DetectorResult(
        model="churn",
        version="v1",
        detector="psi",
        window_start=start,
        window_end=start + HOUR,
        computed_at=start + HOUR,
        status="ok" if score is not None else "insufficient_data",
        score=score,
        threshold=0.2,
        direction="higher",
        alert=score is not None and score > 0.2,
        feature=feature,
        segment=segment,
    )


def test_latest_values_skip_windows_without_a_value_and_segments(store: SqlStore) -> None:
    store.upsert_results(
        [
            result(0, 0.05),
            result(1, 0.3),
            result(2, None),  # too little data in the newest window: 0.3 stays the answer
            result(2, 0.9, segment="plan=pro"),
            result(0, 0.01, feature="tenure"),
        ]
    )
    latest = store.latest_values(T0)
    assert [(r.feature, r.score, r.window_end, r.test) for r in latest] == [
        ("age", 0.3, T0 + 2 * HOUR, ""),
        ("tenure", 0.01, T0 + HOUR, ""),
    ]


def test_latest_values_read_only_windows_ending_after_since(store: SqlStore) -> None:
    store.upsert_results([result(0, 0.05), result(5, 0.4, feature="tenure")])
    latest = store.latest_values(T0 + 2 * HOUR)
    assert [(r.feature, r.score) for r in latest] == [("tenure", 0.4)]
    assert store.latest_values(T0 + 7 * HOUR) == []


def test_runs_since_come_oldest_first(store: SqlStore) -> None:
    for minutes, status in ((0, "ok"), (5, "error"), (10, "ok")):
        moment = T0 + timedelta(minutes=minutes)
        store.record_run(
            DetectorRun("churn", "drift", moment, 12.5, status, moment, 1, 3, "me")  # type: ignore[arg-type]
        )
    runs = store.runs_since(T0)
    assert [(r.started_at, r.status, r.duration_ms, r.owner) for r in runs] == [
        (T0 + timedelta(minutes=5), "error", 12.5, "me"),
        (T0 + timedelta(minutes=10), "ok", 12.5, "me"),
    ]


def test_latest_values_carry_the_deciding_test_and_the_ab_baseline(store: SqlStore) -> None:
    drift = replace(result(0, 0.3), detector="prediction_drift", details={"test": "psi"})
    ab = replace(result(0, 0.01, feature=""), detector="ab_accuracy", details={"baseline": "v0"})
    store.upsert_results([drift, ab])
    found = {r.detector: r for r in store.latest_values(T0)}
    assert (found["prediction_drift"].test, found["prediction_drift"].baseline) == ("psi", "")
    assert (found["ab_accuracy"].baseline, found["ab_accuracy"].alert) == ("v0", False)
    assert found["prediction_drift"].alert is True


def test_latest_values_read_recent_windows_through_the_window_end_index(store: SqlStore) -> None:
    """A scrape costs what the lookback holds, not what the results table has piled up.

    SQLite used to walk its whole primary key for the ranking; the plan of the statement
    the store sends must read detector_results through the window_end index instead.
    """
    store.upsert_results(
        [result(hour, 0.1, feature=f"f{n:02d}") for hour in range(60) for n in range(40)]
    )
    with store.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE detector_results")
    with statements_sent(store.engine, r"\bdetector_results\b") as sent:
        latest = store.latest_values(T0 + 58 * HOUR)
    assert len(latest) == 40
    [(statement, parameters)] = sent
    steps = plan(store.engine, statement, parameters)
    assert any("ix_detector_results_window_end" in step for step in steps), steps
