"""What the detectors read and record, on SQLite and the real PostgreSQL alike."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from modeltap.schema import DetectorRun, EventBatch, WindowRecord
from modeltap.store import SqlStore
from tests.modeltap.store.factories import T0, events, label, prediction, request
from tests.modeltap.store.plans import plan, statements_sent

HOUR = timedelta(hours=1)
MESSY = {
    "age": 41,
    "income": 1234.5,
    "plan": "pro",
    "tier": 3,
    "vip": True,
    "gap": None,
    "bad": math.nan,
    "text_age": "forty",
    "listy": [1, 2],
}


def test_rows_come_back_typed_on_every_database(store: SqlStore) -> None:
    store.write(EventBatch([request(0)], [prediction(0, features=MESSY)]))
    frame = store.read_rows(
        "churn",
        T0,
        T0 + HOUR,
        numerical=["age", "income", "gap", "bad", "text_age", "absent"],
        categorical=["plan", "tier", "vip", "listy"],
    )
    assert list(frame.columns) == [
        "version", "ts", "prediction", "score",
        "feature:age", "feature:income", "feature:gap", "feature:bad", "feature:text_age",
        "feature:absent", "feature:plan", "feature:tier", "feature:vip", "feature:listy",
    ]  # fmt: skip
    row = frame.iloc[0].tolist()
    assert row[:4] == ["v1", (T0 + timedelta(seconds=0)).timestamp(), "0", 0.25]
    assert row[4:6] == [41.0, 1234.5]
    # null, NaN (stored as null), text where a number belongs, absent: all NaN.
    assert all(math.isnan(value) for value in row[6:10])
    # Categories as JSON spells them; a list is not a category.
    assert row[10:13] == ["pro", "3", "true"]
    assert row[13] is None or (isinstance(row[13], float) and math.isnan(row[13]))
    assert frame["feature:age"].dtype == "float64"


def test_rows_join_labels_with_their_arrival_time(store: SqlStore) -> None:
    store.write(events(range(3)))
    arrived = T0 + timedelta(hours=2)
    store.write(EventBatch(labels=[label(0, 1, at=arrived), label(2, "yes", at=arrived)]))
    frame = store.read_rows("churn", T0, T0 + HOUR, numerical=["age"], with_labels=True)
    frame = frame.sort_values("ts")
    assert frame["label"].tolist()[0] == "1"
    assert frame["label"].tolist()[2] == "yes"
    assert frame["label"].isna().tolist() == [False, True, False]
    assert frame["label_received_at"].tolist()[0] == arrived.timestamp()


def test_an_empty_window_reads_as_an_empty_typed_frame(store: SqlStore) -> None:
    frame = store.read_rows("churn", T0, T0 + HOUR, numerical=["age"], categorical=["plan"])
    assert len(frame) == 0
    assert frame["feature:age"].dtype == "float64"
    assert len(store.read_serving("churn", T0, T0 + HOUR)) == 0


def test_serving_rows_mark_upstream_failures(store: SqlStore) -> None:
    failed = replace(request(1, status=502), error="upstream_timeout")
    store.write(EventBatch([request(0), failed, request(2, status=404)]))
    frame = store.read_serving("churn", T0, T0 + HOUR).sort_values("latency_ms")
    assert frame["status_code"].tolist() == [200, 502, 404]
    assert frame["upstream_failed"].tolist() == [False, True, False]
    assert frame["latency_ms"].tolist() == [10.0, 11.0, 12.0]


def test_serving_rows_of_several_versions_read_alike_on_every_database(store: SqlStore) -> None:
    # Versions interleaved in time, an unmeasured latency and a failure among them, another
    # model's request and one outside the window, which must not be read.
    versions = ["v2", "v10", "v1", "v2", "v10", "v2"]
    records = [request(n, version=version) for n, version in enumerate(versions)]
    records[3] = replace(records[3], latency_ms=None, status_code=599, error="response_not_logged")
    records.append(request(9, model="other"))
    records.append(request(10, ts=T0 + HOUR))
    store.write(EventBatch(records))
    frame = store.read_serving("churn", T0, T0 + HOUR)
    assert list(frame.columns) == ["version", "latency_ms", "status_code", "upstream_failed"]
    assert list(frame["version"].cat.categories) == ["v1", "v10", "v2"]
    assert frame["latency_ms"].dtype == "float64"
    assert frame["status_code"].dtype == "int64"
    assert frame["upstream_failed"].dtype == "bool"
    got = sorted(
        (str(version), -1.0 if math.isnan(latency) else latency, int(status), bool(failed))
        for version, latency, status, failed in frame.itertuples(index=False)
    )
    assert got == [
        ("v1", 12.0, 200, False),
        ("v10", 11.0, 200, False),
        ("v10", 14.0, 200, False),
        ("v2", -1.0, 599, True),
        ("v2", 10.0, 200, False),
        ("v2", 15.0, 200, False),
    ]


def test_unmeasured_latency_reads_as_nan_and_stays_out_of_the_figures(store: SqlStore) -> None:
    import numpy as np

    from detectors.families.operations import operations

    unmeasured = replace(request(1, status=599), latency_ms=None, error="response_not_logged")
    store.write(EventBatch([request(0), unmeasured, request(2)]))
    frame = store.read_serving("churn", T0, T0 + HOUR)
    latency = frame["latency_ms"].to_numpy(dtype=np.float64)
    assert int(np.isnan(latency).sum()) == 1
    figures = operations(
        latency,
        frame["status_code"].to_numpy(dtype=np.int64),
        frame["upstream_failed"].to_numpy(dtype=bool),
        3600.0,
    )
    # Three requests, one failed; the latency figures come from the two measured ones only.
    assert (figures.requests, figures.errors) == (3, 1)
    assert figures.latency_ms[50] == 11.0
    assert figures.latency_mean_ms == 11.0


def test_postgres_casts_the_printed_number_to_the_same_double_as_jsonb_would(
    postgres_database: str,
) -> None:
    """The row query casts ``features ->> key`` (text) to float8 rather than the jsonb value.

    PostgreSQL's jsonb-to-float8 cast prints the number and parses the text, so the two must
    agree for every number, including ones a shorter path could round differently. (SQLite
    reads numbers through json_extract; there is no cast to compare.)
    """
    store = SqlStore.open(postgres_database, migrate=True)
    tricky = [0.1 + 0.2, 1e-30, 5e-324, 1.7976931348623157e308, -0.0, 2.0**53 + 1, 123456789.123]
    tricky += [12345678901234567890, 1 / 3, 2.5e-8, 9007199254740993]
    store.write(
        EventBatch(
            [request(n) for n in range(len(tricky))],
            [prediction(n, features={"x": value}) for n, value in enumerate(tricky)],
        )
    )
    with store.engine.connect() as connection:
        pairs = connection.exec_driver_sql(
            "SELECT (features ->> 'x')::float8, (features -> 'x')::float8 FROM predictions"
        ).all()
    store.close()
    assert len(pairs) == len(tricky)
    assert all(text == jsonb for text, jsonb in pairs)
    assert sorted(text for text, _ in pairs) == sorted(float(value) for value in tricky)


def test_every_double_and_category_reads_back_exactly(store: SqlStore) -> None:
    """Doubles of 17 significant digits come back bit for bit, and categories as stored.

    PostgreSQL prints each double as the shortest text that reads back to it; a parser that
    rounds 17-digit text on its own (pandas' default C parser does, off by one unit in the
    last place for about a third of such numbers) would feed the statistics numbers nobody
    stored. Categories that look like CSV's own syntax (the null marker, quotes, commas,
    line breaks, an empty string) must stay what they were.
    """
    import numpy as np

    rng = np.random.default_rng(7)
    values = [float(v) for v in rng.uniform(0, 1, 300)]
    values += [float(v) for v in rng.normal(0, 1e6, 300)]
    # (Not -0.0: jsonb keeps numbers as numeric, which has no negative zero.)
    values += [0.1 + 0.2, 5e-324, 1.7976931348623157e308, 2.0**53 + 1, 1 / 3]
    odd = ["\\N", "", '"', "a,b", "line\nbreak", "cr\rhere", " spaced ", "NULL", "NaN", "é"]
    store.write(
        EventBatch(
            [request(n) for n in range(len(values))],
            [
                prediction(n, features={"x": value, "c": odd[n % len(odd)]})
                for n, value in enumerate(values)
            ],
        )
    )
    for read_frame in (
        store.read_rows("churn", T0, T0 + 2 * HOUR, numerical=["x"], categorical=["c"]),
        store.read_rows_counted("churn", T0, T0 + 2 * HOUR, numerical=["x"], categorical=["c"])[0],
    ):
        frame = read_frame.sort_values("ts")
        read = frame["feature:x"].to_numpy()
        assert read.tobytes() == np.array(values).tobytes()
        assert frame["feature:c"].tolist() == [odd[n % len(odd)] for n in range(len(values))]
        assert frame["feature:c"].isna().sum() == 0


def test_type_violations_are_counted_per_version(store: SqlStore) -> None:
    store.write(EventBatch([request(0)], [prediction(0, features=MESSY)]))
    store.write(
        EventBatch([request(1, version="v2")], [prediction(1, features=MESSY, version="v2")])
    )
    store.write(EventBatch([request(2)], [prediction(2, features={"age": 3, "plan": "x"})]))
    counts = store.type_violations(
        "churn",
        T0,
        T0 + HOUR,
        {
            "text_age": "numerical",
            "age": "numerical",
            "listy": "categorical",
            "plan": "categorical",
            "gap": "numerical",
        },
    )
    assert counts == {
        "v1": {"text_age": 1, "age": 0, "listy": 1, "plan": 0, "gap": 0},
        "v2": {"text_age": 1, "age": 0, "listy": 1, "plan": 0, "gap": 0},
    }


def test_rows_counted_in_one_read_equal_the_rows_and_the_violations_read_apart(
    store: SqlStore,
) -> None:
    store.write(EventBatch([request(0)], [prediction(0, features=MESSY)]))
    other = {**MESSY, "age": "41", "plan": ["pro"], "tier": {"a": 1}, "vip": "x", "gap": 2}
    store.write(
        EventBatch([request(1, version="v2")], [prediction(1, features=other, version="v2")])
    )
    store.write(EventBatch([request(2)], [prediction(2, features={"age": 3, "plan": '"q"'})]))
    store.write(EventBatch([request(3)], [prediction(3, features={"plan": 3, "tier": "3"})]))
    numerical = ["age", "income", "gap", "bad", "text_age", "absent", "vip"]
    categorical = ["plan", "tier", "vip2", "listy"]
    frame, counts = store.read_rows_counted(
        "churn", T0, T0 + HOUR, numerical=numerical, categorical=categorical, with_labels=True
    )
    apart = store.read_rows(
        "churn", T0, T0 + HOUR, numerical=numerical, categorical=categorical, with_labels=True
    )
    kinds = dict.fromkeys(numerical, "numerical")
    kinds |= dict.fromkeys(categorical, "categorical")
    assert counts == store.type_violations("churn", T0, T0 + HOUR, kinds)
    # Text where a number belongs, a list and an object where a category belongs.
    assert (counts["v2"]["age"], counts["v2"]["plan"], counts["v2"]["tier"]) == (1, 1, 1)
    assert (counts["v1"]["listy"], counts["v1"]["age"]) == (1, 0)
    one, two = (f.sort_values("ts").reset_index(drop=True) for f in (frame, apart))
    assert list(one.columns) == list(two.columns)
    assert (one.dtypes == two.dtypes).all()
    for column in one.columns:
        assert _present(one[column]) == _present(two[column]), column


def _present(values: Any) -> list[Any]:
    """The values, with None for every kind of missing (NaN, None)."""
    missing = values.isna().tolist()
    return [None if gone else value for value, gone in zip(values, missing, strict=True)]


def test_event_counts_per_window(store: SqlStore) -> None:
    store.write(events(range(5), rows=2))  # T0 + 0..4 s
    store.write(events(range(3600, 3603)))  # the next hour
    store.write(events(range(7200, 7201), model="other"))
    counts = store.event_counts("churn", T0 - HOUR, T0 + 3 * HOUR, HOUR)
    assert counts == {T0: (5, 10), T0 + HOUR: (3, 3)}


def test_labelled_windows_since_a_moment(store: SqlStore) -> None:
    store.write(events(range(3)))
    store.write(events(range(3600, 3602)))
    store.write(
        EventBatch(labels=[label(0, 1, at=T0 + 2 * HOUR), label(3600, 0, at=T0 + 4 * HOUR)])
    )
    found = store.labelled_windows(
        "churn", since=T0 + 3 * HOUR, until=T0 + 5 * HOUR, earliest=T0 - HOUR, window=HOUR
    )
    assert found == [T0 + HOUR]
    everything = store.labelled_windows(
        "churn", since=T0, until=T0 + 5 * HOUR, earliest=T0 - HOUR, window=HOUR
    )
    assert everything == [T0, T0 + HOUR]
    assert store.labelled_windows(
        "churn", since=T0, until=T0 + 5 * HOUR, earliest=T0 + HOUR, window=HOUR
    ) == [T0 + HOUR]


def test_windows_are_recorded_and_recounted(store: SqlStore) -> None:
    record = WindowRecord("churn", "drift", T0, T0 + HOUR, T0 + 2 * HOUR, 10, 12, owner="a")
    store.save_window([], [record])
    store.save_window(
        [], [WindowRecord("churn", "drift", T0, T0 + HOUR, T0 + 3 * HOUR, 11, 13, owner="b")]
    )
    store.save_window([], [WindowRecord("churn", "quality", T0, T0 + HOUR, T0 + 3 * HOUR, 1, 1)])
    (saved,) = store.window_records("churn", "drift", T0)
    assert (saved.requests, saved.predictions, saved.computations, saved.owner) == (11, 13, 2, "b")
    assert saved.computed_at == T0 + 3 * HOUR
    assert store.window_records("churn", "drift", T0 + HOUR) == []


def test_runs_are_recorded_and_summarised(store: SqlStore) -> None:
    def run(minutes: int, status: str, detector: str = "drift") -> DetectorRun:
        moment = T0 + timedelta(minutes=minutes)
        return DetectorRun(
            "churn",
            detector,
            moment,
            12.5,
            "error" if status == "error" else "ok",
            moment,
            owner="me",
            error="boom" if status == "error" else None,
        )

    for item in (
        run(0, "ok"),
        run(5, "error"),
        run(10, "ok"),
        run(15, "error"),
        run(20, "error"),
        run(3, "ok", "ab"),
    ):
        store.record_run(item)
    health = {h.detector: h for h in store.run_health()}
    drift = health["drift"]
    assert (drift.runs, drift.failures, drift.consecutive_failures) == (5, 3, 2)
    assert (drift.last_status, drift.last_error) == ("error", "boom")
    assert drift.last_started_at == T0 + timedelta(minutes=20)
    assert (health["ab"].failures, health["ab"].consecutive_failures) == (0, 0)
    assert store.last_ok_as_of("churn", "drift") == T0 + timedelta(minutes=10)
    assert store.last_ok_as_of("churn", "nothing") is None
    assert store.run_health("other") == []


def test_purge_removes_old_bookkeeping(store: SqlStore) -> None:
    store.record_run(DetectorRun("churn", "drift", T0, 1.0, "ok", T0))
    store.save_window([], [WindowRecord("churn", "drift", T0, T0 + HOUR, T0 + HOUR, 0, 0)])
    summary = store.purge(T0 + 2 * HOUR)
    assert (summary.runs, summary.windows) == (1, 1)
    assert store.run_health() == []


def test_job_locks_are_exclusive_across_connections_on_postgres(store: SqlStore) -> None:
    with store.detector_lock("churn", "drift") as first:
        assert first
        with store.detector_lock("churn", "drift") as second:
            # PostgreSQL: another session cannot own the job; SQLite: one process, no lock.
            assert second is (store.engine.dialect.name == "sqlite")
        with store.detector_lock("churn", "quality") as other:
            assert other
    with store.detector_lock("churn", "drift") as again:
        assert again


def test_window_reads_are_bounded_by_time_in_the_index_on_sqlite(tmp_path: Path) -> None:
    """A window's read costs the window, not the model's whole history.

    PostgreSQL also bounds it by the day's partition; SQLite has only the index, which must
    narrow on model and time together for every read a detector makes of the event tables.
    """
    store = SqlStore.open(f"sqlite:///{tmp_path / 'store.db'}", migrate=True)
    store.write(events(range(50)))
    start, end = T0, T0 + HOUR
    with statements_sent(store.engine, r"\bFROM (requests|predictions)\b") as sent:
        store.read_rows(
            "churn", start, end, numerical=["age"], categorical=["plan"], with_labels=True
        )
        store.read_serving("churn", start, end)
        store.type_violations("churn", start, end, {"age": "numerical"})
        store.event_counts("churn", start, end, timedelta(minutes=5))
        store.read_requests("churn", start, end, version="v1")
        store.read_predictions("churn", start, end)
        store.versions("churn", start, end)
    assert len(sent) == 8  # event_counts reads both tables
    for statement, parameters in sent:
        steps = " | ".join(plan(store.engine, statement, parameters))
        assert re.search(r"USING (COVERING )?INDEX ix_\w+_model_ts \(model=\? AND ts>", steps), (
            statement,
            steps,
        )
    store.close()


def test_newly_labelled_windows_start_from_the_new_labels_on_sqlite(tmp_path: Path) -> None:
    """Each run asks which windows got labels since the last one: a handful of labels.

    SQLite must walk those labels by arrival and look each prediction up by its label key,
    not scan the model's predictions over the whole label horizon.
    """
    store = SqlStore.open(f"sqlite:///{tmp_path / 'store.db'}", migrate=True)
    batch = events(range(20))
    store.write(replace(batch, labels=[label(n, 1, at=T0 + HOUR) for n in range(5)]))
    with statements_sent(store.engine, "JOIN labels") as sent:
        found = store.labelled_windows(
            "churn", since=T0, until=T0 + 2 * HOUR, earliest=T0 - 7 * 24 * HOUR, window=HOUR
        )
    assert found == [T0]
    [(statement, parameters)] = sent
    steps = plan(store.engine, statement, parameters)
    assert steps[:2] == [
        "SEARCH labels USING INDEX ix_labels_received_at (received_at>? AND received_at<?)",
        "SEARCH predictions USING INDEX ix_predictions_label_key (label_key=?)",
    ], steps
    store.close()


def test_class_probabilities_come_back_as_the_json_they_were_stored_as(store: SqlStore) -> None:
    """A multiclass model's probabilities, a list or an object, read back as JSON text on
    both databases; rows without any read as missing."""
    answered: list[Any] = [[0.1, 0.2, 0.7], {"cat": 0.5, "dog": 0.25, "eel": 0.25}, None]
    store.write(
        EventBatch(
            [request(n) for n in range(3)],
            [replace(prediction(n), class_scores=answered[n]) for n in range(3)],
        )
    )
    frame = store.read_rows("churn", T0, T0 + HOUR, numerical=["age"], class_scores=True)
    texts = frame.sort_values("ts")["class_scores"].tolist()
    assert [json.loads(text) for text in texts[:2]] == answered[:2]
    assert texts[2] is None or (isinstance(texts[2], float) and math.isnan(texts[2]))
    counted, _ = store.read_rows_counted(
        "churn", T0, T0 + HOUR, numerical=["age"], class_scores=True
    )
    assert counted.sort_values("ts")["class_scores"].tolist()[:2] == texts[:2]
    # Not asked for, not read: other models' windows cost what they always did.
    assert "class_scores" not in store.read_rows("churn", T0, T0 + HOUR, numerical=["age"])


def test_class_probabilities_keyed_by_odd_class_names_are_stored(store: SqlStore) -> None:
    """Keys a model server chose, whatever they are: NUL (which PostgreSQL's JSON refuses), a
    lone surrogate, a very long name. The row is stored; the odd characters as U+FFFD."""
    odd = {"a\x00b": 0.5, "\ud800": 0.25, "k" * 10_000: 0.25}
    written = store.write(EventBatch([request(0)], [replace(prediction(0), class_scores=odd)]))
    assert written.predictions_written == 1
    frame = store.read_rows("churn", T0, T0 + HOUR, class_scores=True)
    assert json.loads(frame["class_scores"].iloc[0]) == {
        "a\ufffdb": 0.5, "\ufffd": 0.25, "k" * 10_000: 0.25
    }  # fmt: skip
