"""Backfill against live: the same windows, the same rows, from the store and from files."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from detectors import backfill
from detectors.backfill_pool import Job, run, worker_store
from detectors.history import Columns, FileSource, read_labels
from detectors.runner import Runner
from detectors.windows import Window
from modeltap.errors import InputError
from modeltap.schema import FAMILIES, DetectorResult, EventBatch
from modeltap.store import SqlStore
from tests.detectors.test_runner import SETTINGS, at, prepare
from tests.detectors.traffic import MODEL, Traffic, config, write
from tests.modeltap.store.test_sql_store import setting

HOUR = timedelta(hours=1)
# Every family that reads rows: the estimators must come out of a file as they do live.
DATA_FAMILIES = ("quality", "drift", "performance", "estimation", "multivariate")


def keyed(results: list[DetectorResult], *, timeless: bool = True) -> dict[tuple[Any, ...], Any]:
    """Results by their window key; without computed_at when ``timeless``."""
    out = {}
    for r in results:
        fields = {k: getattr(r, k) for k in r.__slots__ if not (timeless and k == "computed_at")}
        out[(r.detector, r.version, r.feature, r.segment, r.window_start)] = fields
    return out


def backfilled(store: SqlStore, source: Any, found: list[Window], families: Any) -> list[Any]:
    profiles = backfill.stored_profiles(store, MODEL, ["v1", "v2"])
    out: list[DetectorResult] = []
    for window in found:
        computed = backfill.compute(
            SETTINGS, window, source.read(window), profiles, now=found[-1].end, detectors=families
        )
        out += [result for results in computed.values() for result in results]
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = (
        f"sqlite:///{tmp_path / 'b.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    opened = SqlStore.open(url, migrate=True)
    yield opened
    opened.close()


def two_versions(store: SqlStore) -> EventBatch:
    """prepare()'s traffic with labels, and a second version with drift from 04:00."""
    batch = prepare(store)
    extra = write(
        store,
        [
            Traffic(at(2), at(6), seed=5, label_share=0.7),
            Traffic(at(4), at(6), seed=6, version="v2", age_mean=55.0, label_share=0.7),
        ],
    )
    return EventBatch(
        [*batch.requests, *extra.requests],
        [*batch.predictions, *extra.predictions],
        [*batch.labels, *extra.labels],
    )


def test_a_backfilled_window_equals_the_same_window_computed_live(store: SqlStore) -> None:
    two_versions(store)
    Runner(store, [SETTINGS], owner="live").run_all(at(6))
    live = keyed(store.results_between(MODEL, at(2), at(6)))
    found = backfill.windows(at(2), at(6), HOUR)
    again = keyed(backfilled(store, backfill.StoreSource(store, SETTINGS), found, FAMILIES))
    assert len(found) == 4
    assert {key[0] for key in again} >= {"latency_p99_ms", "psi", "accuracy", "ab_latency"}
    assert again == live
    assert any(fields["alert"] for fields in again.values())  # the drifted v2 is in there


def test_running_twice_leaves_the_same_rows_and_a_stopped_run_resumes(store: SqlStore) -> None:
    two_versions(store)
    found = backfill.windows(at(2), at(6), HOUR)
    job = Job(config(), MODEL, HOUR, backfill.as_of(found), FAMILIES)
    source = backfill.StoreSource(store, SETTINGS)
    observed = source.event_counts(at(2), at(6), HOUR)
    calls = iter(range(100))
    first = run(job, store, source, found, observed, stop=lambda: next(calls) >= 2)
    assert (first.windows, first.stopped) == (2, True)
    finished = backfill.done(store, SETTINGS, FAMILIES, found, counts=observed, now=job.now)
    assert finished == set(found[:2])
    rest = [window for window in found if window not in finished]
    second = run(job, store, source, rest, observed)
    assert (second.windows, second.stopped) == (2, False)
    rows = keyed(store.results_between(MODEL, at(2), at(6)), timeless=False)
    run(job, store, source, found, observed)  # everything again: upserted, not appended
    assert keyed(store.results_between(MODEL, at(2), at(6)), timeless=False) == rows
    assert len(store.results_between(MODEL, at(2), at(6))) == len(rows)
    done = backfill.done(store, SETTINGS, FAMILIES, found, counts=observed, now=job.now)
    assert done == set(found)


def exported(batch: EventBatch, directory: Path) -> tuple[pd.DataFrame, Path]:
    """The stored predictions as a warehouse would export them, and their labels as a file."""
    frame = pd.DataFrame(
        [
            {
                "ts": p.ts,
                "prediction": p.prediction,
                "score": p.score,
                "version": p.version,
                "request_id": p.request_id,
                "row_index": p.row_index,
                **p.features,
            }
            for p in batch.predictions
        ]
    )
    labels = directory / "truth.jsonl"
    labels.write_text(
        "".join(
            json.dumps(
                {
                    "request_id": label.request_id,
                    "row_index": label.row_index,
                    "label": label.value,
                    "time": label.received_at.isoformat(),
                }
            )
            + "\n"
            for label in batch.labels
        )
    )
    return frame, labels


@pytest.mark.parametrize("kind", ["parquet", "parquet-dir", "csv", "jsonl", "parquet-text-time"])
def test_a_file_backfill_equals_the_live_results(tmp_path: Path, kind: str) -> None:
    store = SqlStore.open(f"sqlite:///{tmp_path / 'f.db'}", migrate=True)
    batch = two_versions(store)
    Runner(store, [SETTINGS], owner="live").run_all(at(6))
    live = {
        key: fields
        for key, fields in keyed(store.results_between(MODEL, at(2), at(6))).items()
        if fields["detector"] not in {"label_delay_s"}
        and not fields["detector"].startswith(("latency", "error", "throughput", "ab_"))
    }
    frame, labels_path = exported(batch, tmp_path)
    frame = frame.sample(frac=1.0, random_state=3)  # no order is promised
    path = tmp_path / "history"
    if kind == "parquet":
        frame.to_parquet(path.with_suffix(".parquet"))
        path = path.with_suffix(".parquet")
    elif kind == "parquet-dir":
        frame.assign(day=frame["ts"].dt.strftime("%Y-%m-%d"), hour=frame["ts"].dt.hour).to_parquet(
            path, partition_cols=["day", "hour"]
        )
    elif kind == "parquet-text-time":
        frame.assign(ts=frame["ts"].map(lambda t: t.isoformat())).to_parquet(
            path.with_suffix(".pq")
        )
        path = path.with_suffix(".pq")
    elif kind == "csv":
        frame.to_csv(path.with_suffix(".csv"), index=False)
        path = path.with_suffix(".csv")
    else:
        frame.to_json(path.with_suffix(".jsonl"), orient="records", lines=True, date_format="iso")
        path = path.with_suffix(".jsonl")
    labels = read_labels(labels_path, "label", at(0))
    source = FileSource(path, SETTINGS, Columns(), labels=labels)
    try:
        source.prepare(HOUR)
        assert (source.scratch() is None) == (kind in ("parquet", "parquet-dir"))
        counts = source.event_counts(at(2), at(6), HOUR)
        assert sum(pair[1] for pair in counts.values()) == len(frame)
        found = backfill.windows(at(2), at(6), HOUR)
        again = keyed(backfilled(store, source, found, DATA_FAMILIES))
    finally:
        source.close()
    assert source.scratch() is None
    again = {k: v for k, v in again.items() if v["detector"] != "label_delay_s"}
    assert again == live
    assert {"accuracy", "psi", "missing_ratio", "label_coverage"} <= {k[0] for k in again}


def test_a_file_without_the_configured_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    pd.DataFrame({"ts": ["2026-11-25T00:00:00Z"], "age": [1.0], "prediction": [1]}).to_csv(
        path, index=False
    )
    with pytest.raises(InputError, match=r"no column 'tenure', 'plan'"):
        FileSource(path, SETTINGS, Columns())
    with pytest.raises(InputError, match="does not exist"):
        FileSource(tmp_path / "nothing.parquet", SETTINGS, Columns())


def test_a_range_without_a_complete_window_is_refused() -> None:
    with pytest.raises(InputError, match="no complete"):
        backfill.windows(at(2), at(2.5), HOUR)
    assert backfill.windows(at(2.5), at(4), HOUR) == [Window(at(2), at(3)), Window(at(3), at(4))]


def test_only_a_version_keeps_that_versions_data(store: SqlStore) -> None:
    two_versions(store)
    data = backfill.StoreSource(store, SETTINGS).read(Window(at(4), at(5)))
    assert set(data.rows) == {"v1", "v2"}
    only = data.only("v2")
    assert set(only.rows) == set(only.requests) == {"v2"}
    assert replace(only).counts[1] == len(only.rows["v2"])


def test_workers_read_the_store_in_use_not_the_configured_one(
    store: SqlStore, tmp_path: Path
) -> None:
    two_versions(store)
    found = backfill.windows(at(2), at(6), HOUR)
    # The configuration names a database that does not exist: a worker opening it would fail.
    elsewhere = f"sqlite:///{tmp_path / 'missing' / 'other.db'}"
    job = Job(
        config().model_copy(
            update={"storage": config().storage.model_copy(update={"url": elsewhere})}
        ),
        MODEL,
        HOUR,
        backfill.as_of(found),
        FAMILIES,
    )
    source = backfill.StoreSource(store, SETTINGS)
    observed = source.event_counts(at(2), at(6), HOUR)
    summary = run(job, store, source, found, observed, workers=2)
    assert (summary.windows, summary.stopped) == (4, False)
    assert summary.rows == sum(counts[1] for counts in observed.values())
    assert not (tmp_path / "missing").exists()


def test_a_worker_asks_postgres_for_no_parallel_plans(postgres_database: str) -> None:
    # The workers already fill the cores; a parallel plan per window only adds processes.
    SqlStore.open(postgres_database, migrate=True).close()
    store = worker_store(postgres_database)
    assert setting(store, "max_parallel_workers_per_gather") == "0"
    store.close()


def test_the_store_is_told_each_windows_event_count(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small window known to be small is read from PostgreSQL in one piece (json_rows).
    two_versions(store)
    found = backfill.windows(at(2), at(6), HOUR)
    job = Job(config(), MODEL, HOUR, backfill.as_of(found), FAMILIES)
    source = backfill.StoreSource(store, SETTINGS)
    observed = source.event_counts(at(2), at(6), HOUR)
    told: dict[Any, int] = {}
    real = store.read_rows_counted

    def spy(model: str, start: Any, end: Any, **kwargs: Any) -> Any:
        told[start] = kwargs["expected"]
        return real(model, start, end, **kwargs)

    monkeypatch.setattr(store, "read_rows_counted", spy)
    run(job, store, source, found, observed)
    assert told == {window.start: observed[window.start][1] for window in found}
    assert all(count > 0 for count in told.values())
