"""The SQL store against SQLite and the real PostgreSQL: the same behaviour on both."""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from modeltap.errors import (
    InputError,
    SchemaOutOfDateError,
    StorageDataError,
    StorageUnavailableError,
)
from modeltap.schema import DetectorResult, EventBatch, LabelRecord, WriteSummary
from modeltap.store import SqlStore
from modeltap.store.tables import predictions, requests
from tests.modeltap.store.factories import T0, events, label, prediction, request


def count(store: SqlStore, table: object) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_redelivered_batch_is_ignored(store: SqlStore) -> None:
    batch = events(range(20), rows=3)
    first = store.write(batch)
    second = store.write(batch)
    assert first == WriteSummary(requests_written=20, predictions_written=60)
    assert second == WriteSummary(requests_duplicate=20, predictions_duplicate=60)
    assert count(store, requests) == 20
    assert count(store, predictions) == 60


def test_overlapping_batches_store_each_event_once(store: SqlStore) -> None:
    store.write(events(range(10)))
    summary = store.write(events(range(5, 15)))
    assert (summary.requests_written, summary.requests_duplicate) == (5, 5)
    assert count(store, requests) == 15


def test_duplicates_inside_one_batch_are_stored_once(store: SqlStore) -> None:
    batch = events(range(3))
    doubled = EventBatch(
        [*batch.requests, *batch.requests], [*batch.predictions, *batch.predictions]
    )
    summary = store.write(doubled)
    assert summary.requests_written == 3
    assert summary.requests_duplicate == 3
    assert count(store, predictions) == 3


def test_labels_upsert_on_their_key_and_the_last_value_wins(store: SqlStore) -> None:
    store.write(events(range(3)))
    first = store.write(EventBatch(labels=[label(0, 1), label(1, 0)]))
    later = T0 + timedelta(hours=5)
    second = store.write(EventBatch(labels=[label(1, 1, at=later), label(2, 0), label(2, 1)]))
    assert (first.labels_written, first.labels_updated) == (2, 0)
    # label 2 appears twice in one batch: written once, the last value kept.
    assert (second.labels_written, second.labels_updated) == (1, 1)
    frame = store.read_predictions("churn", T0, T0 + timedelta(hours=1), with_labels=True)
    assert frame["label"].tolist() == [1, 1, 1]
    assert frame["label_received_at"].tolist()[1] == later


def test_labels_join_on_instance_ids_when_given(store: SqlStore) -> None:
    store.write(
        EventBatch(predictions=[prediction(0, instance_id="cust-7")], requests=[request(0)])
    )
    store.write(
        EventBatch(
            labels=[LabelRecord(value="churned", ts=T0, received_at=T0, instance_id="cust-7")]
        )
    )
    frame = store.read_predictions("churn", T0, T0 + timedelta(hours=1), with_labels=True)
    assert frame["label"].tolist() == ["churned"]


def test_time_ranges_are_half_open_and_filter_model_and_version(store: SqlStore) -> None:
    store.write(events(range(10)))
    store.write(events(range(100, 103), version="v2"))
    store.write(events(range(200, 202), model="other"))
    window = store.read_requests("churn", T0 + timedelta(seconds=2), T0 + timedelta(seconds=5))
    assert window["request_id"].tolist() == ["req-2", "req-3", "req-4"]
    v2 = store.read_requests("churn", T0, T0 + timedelta(hours=1), version="v2")
    assert v2["request_id"].tolist() == ["req-100", "req-101", "req-102"]
    assert store.versions("churn", T0, T0 + timedelta(hours=1)) == ["v1", "v2"]
    assert store.versions("churn", T0, T0 + timedelta(seconds=1)) == ["v1"]


def test_request_reads_project_columns(store: SqlStore) -> None:
    store.write(events(range(3)))
    frame = store.read_requests(
        "churn", T0, T0 + timedelta(hours=1), columns=("ts", "latency_ms", "status_code")
    )
    assert list(frame.columns) == ["ts", "latency_ms", "status_code"]
    assert frame["latency_ms"].tolist() == [10.0, 11.0, 12.0]
    assert frame["ts"].iloc[0] == T0
    with pytest.raises(InputError, match="unknown request column"):
        store.read_requests("churn", T0, T0, columns=("ts", "password"))


def test_feature_projection_gives_the_same_values_on_every_database(store: SqlStore) -> None:
    features = {
        "age": 41,
        "income": 1234.5,
        "plan": "pro",
        "gap": None,
        "bad": math.nan,
        "flag": True,
        "a.b c": "dotted",
    }
    store.write(EventBatch([request(0)], [prediction(0, features=features)]))
    frame = store.read_predictions(
        "churn",
        T0,
        T0 + timedelta(hours=1),
        features=["age", "income", "plan", "gap", "bad", "flag", "a.b c", "absent"],
    )
    row = frame.to_dict("records")[0]
    assert row["age"] == 41
    assert isinstance(row["age"], int)
    assert row["income"] == 1234.5
    assert row["plan"] == "pro"
    assert row["flag"] is True
    assert row["a.b c"] == "dotted"
    # JSON null, a NaN (stored as null) and a missing key all read back as None.
    assert [row["gap"], row["bad"], row["absent"]] == [None, None, None]


def test_feature_names_with_double_quotes_are_refused(store: SqlStore) -> None:
    # SQLite's JSON paths cannot address such keys; refusing on both keeps them identical.
    with pytest.raises(InputError, match="double quote"):
        store.read_predictions("churn", T0, T0, features=['say"what'])


def test_all_features_come_back_as_a_mapping_without_projection(store: SqlStore) -> None:
    store.write(events(range(2)))
    frame = store.read_predictions("churn", T0, T0 + timedelta(hours=1))
    assert frame["features"].tolist() == [{"age": 30, "plan": "pro"}, {"age": 31, "plan": "pro"}]


def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    naive = datetime(2026, 11, 25, 12, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="naive datetime"):
        store.write(EventBatch([request(0, ts=naive)]))
    assert count(store, requests) == 0


def test_reference_profiles_are_versioned(store: SqlStore) -> None:
    assert store.get_reference("churn") is None
    first = store.put_reference("churn", "", {"bins": [1, 2]}, source="train.csv", created_at=T0)
    second = store.put_reference("churn", "", {"bins": [3]}, source="window", created_at=T0)
    other = store.put_reference("churn", "v2", {"bins": [9]}, source="x", created_at=T0)
    assert (first.profile_version, second.profile_version, other.profile_version) == (1, 2, 1)
    latest = store.get_reference("churn")
    assert latest is not None
    assert latest.profile == {"bins": [3]}
    assert latest.created_at == T0


def result(window: int, score: float, *, feature: str = "age") -> DetectorResult:
    start = T0 + timedelta(hours=window)
    return DetectorResult(
        model="churn",
        version="v1",
        detector="psi",
        feature=feature,
        window_start=start,
        window_end=start + timedelta(hours=1),
        computed_at=start + timedelta(hours=1),
        status="ok",
        score=score,
        threshold=0.2,
        direction="higher",
        alert=score > 0.2,
        reference_size=1000,
        current_size=500,
        details={"bins": 10},
    )


def test_results_upsert_on_their_window_and_latest_picks_the_newest(store: SqlStore) -> None:
    assert store.upsert_results([result(0, 0.1), result(1, 0.3), result(0, 0.05, feature="x")])
    store.upsert_results([result(1, 0.4)])  # recomputed window, e.g. after late labels
    latest = {r.feature: r for r in store.latest_results("churn")}
    assert latest["age"].score == 0.4
    assert latest["age"].alert is True
    assert latest["age"].window_start == T0 + timedelta(hours=1)
    assert latest["x"].score == 0.05
    assert store.latest_results("nobody") == []


def test_a_window_of_results_round_trips_whatever_its_values(store: SqlStore) -> None:
    # PostgreSQL upserts a window's rows as one array per column: NaN, infinities, a column
    # that is NULL in every row, odd text and nested details must come back as they went in,
    # and a second save of the same keys must update, not add.
    start = T0 + timedelta(hours=4)
    values = [math.nan, math.inf, -math.inf, None, 0.0, 5e-324]
    results = [
        DetectorResult(
            model="churn",
            version="v\u00e9",
            detector="drift",
            feature=f"f{index}",
            segment="plan=pro\u2019s" if index % 2 else "",
            window_start=start,
            window_end=start + timedelta(hours=1),
            computed_at=start + timedelta(hours=2),
            status="ok" if value is not None else "insufficient_data",
            score=value,
            threshold=None,
            direction=None,
            alert=index == 1,
            statistic=None,
            reference_size=None if index else 2**40,
            current_size=index,
            details={"nested": {"list": [1, 2.5, None], "text": "\u00fc"}, "index": index},
        )
        for index, value in enumerate(values)
    ]
    store.save_window(results, [])
    store.save_window([replace(results[0], score=0.25, details={"again": True})], [])
    stored = store.results_between("churn", start, start + timedelta(hours=1))
    assert [r.feature for r in stored] == [f"f{index}" for index in range(len(values))]
    expected = [replace(results[0], score=0.25, details={"again": True}), *results[1:]]
    for got, want in zip(stored, expected, strict=True):
        both_nan = got.score is not None and want.score is not None and math.isnan(want.score)
        assert got.score == want.score or (both_nan and math.isnan(got.score or 0.0))
        assert replace(got, score=None) == replace(want, score=None)


def test_purge_removes_what_retention_expired_and_keeps_the_rest(store: SqlStore) -> None:
    day = timedelta(days=1)
    old = [T0 - 3 * day, T0 - 2 * day - timedelta(hours=6)]
    batch = EventBatch(
        requests=[request(n, ts=ts) for n, ts in enumerate([*old, T0])],
        predictions=[prediction(n, ts=ts) for n, ts in enumerate([*old, T0])],
        labels=[label(0, 1, at=T0 - 3 * day), label(2, 1, at=T0)],
    )
    store.write(batch)
    store.upsert_results([result(-72, 0.1), result(0, 0.1)])
    summary = store.purge(T0 - day)
    assert (summary.requests, summary.predictions, summary.labels, summary.results) == (2, 2, 1, 1)
    assert store.read_requests("churn", T0 - 10 * day, T0 + day)["request_id"].tolist() == ["req-2"]
    if store.engine.dialect.name == "postgresql":
        assert summary.partitions_dropped >= 2
    # An event for an expired day still lands (its partition is recreated).
    late = store.write(EventBatch([request(9, ts=T0 - 3 * day)]))
    assert late.requests_written == 1


def test_two_writers_at_once_store_every_event_exactly_once(store_url: str) -> None:
    stores = [SqlStore.open(store_url, migrate=True) for _ in range(2)]
    # Each writer sends 0..599 and an overlapping half of the other's range, in batches.
    plans = [range(0, 900), range(300, 1200)]
    summaries: list[WriteSummary] = [WriteSummary(), WriteSummary()]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            numbers = list(plans[index])
            for start in range(0, len(numbers), 100):
                chunk = numbers[start : start + 100]
                summaries[index] += stores[index].write(events(range(chunk[0], chunk[-1] + 1)))
        except BaseException as error:  # reported below, not swallowed
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert count(stores[0], requests) == 1200
    assert sum(s.requests_written for s in summaries) == 1200
    assert sum(s.requests_duplicate for s in summaries) == 600
    for opened in stores:
        opened.close()


def test_an_empty_database_must_be_upgraded_first(store_url: str) -> None:
    with pytest.raises(SchemaOutOfDateError, match="monitor db upgrade"):
        SqlStore.open(store_url)


def test_an_unreachable_database_is_reported_without_its_password() -> None:
    url = "postgresql+psycopg://modeltap:s3cret@127.0.0.1:1/modeltap"
    with pytest.raises(StorageUnavailableError) as caught:
        SqlStore.open(url)
    assert "s3cret" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


def test_times_read_back_are_utc_aware(store: SqlStore) -> None:
    from zoneinfo import ZoneInfo

    berlin = datetime(2026, 11, 25, 13, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    store.write(EventBatch([request(0, ts=berlin)]))
    frame = store.read_requests("churn", T0, T0 + timedelta(seconds=1), columns=("ts",))
    assert frame["ts"].iloc[0] == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_an_open_reader_does_not_stall_writes_on_postgres(postgres_database: str) -> None:
    # Creating a partition needs an exclusive lock on the parent, which waits for every
    # open reader; writes to days that already exist must not wait with it.
    import psycopg

    store = SqlStore.open(postgres_database, migrate=True)
    tomorrow = T0 + timedelta(days=1)
    store.write(EventBatch([request(0)]))  # today's partition exists from here on
    with store.engine.connect() as connection:
        connection.exec_driver_sql(f"DROP TABLE requests_p{tomorrow:%Y%m%d}")
        connection.commit()
    store._partitions.forget()  # type: ignore[union-attr]  # as if another process dropped it
    reader = psycopg.connect(postgres_database.replace("+psycopg", ""))
    reader.execute("SELECT count(*) FROM requests").fetchone()  # a transaction left open
    # A write that waited for the reader would wait until it closes, which happens only
    # after the write is seen to finish: the join's bound catches a hang, not slowness.
    written: list[WriteSummary] = []
    writer = threading.Thread(target=lambda: written.append(store.write(EventBatch([request(1)]))))
    writer.start()
    writer.join(120)
    finished_with_the_reader_open = not writer.is_alive()
    reader.close()
    writer.join()
    assert finished_with_the_reader_open  # it did not wait out the reader for tomorrow
    assert written[0].requests_written == 1
    store.write(EventBatch([request(2)]))  # with the reader gone, tomorrow is created
    with store.engine.connect() as connection:
        assert (
            connection.exec_driver_sql(
                f"SELECT to_regclass('requests_p{tomorrow:%Y%m%d}')"
            ).scalar()
            is not None
        )
    store.close()


def test_a_store_without_parallel_queries_keeps_the_urls_own_options(
    postgres_database: str,
) -> None:
    default = SqlStore.open(postgres_database, migrate=True)
    assert setting(default, "max_parallel_workers_per_gather") != "0"
    default.close()
    # A URL that sets options of its own: they are kept beside ours.
    given = f"{postgres_database}?options=-c%20work_mem%3D7MB"
    store = SqlStore.open(given, parallel_queries=False)
    assert setting(store, "max_parallel_workers_per_gather") == "0"
    assert setting(store, "work_mem") == "7MB"
    store.close()


def setting(store: SqlStore, name: str) -> str:
    """A PostgreSQL setting as the store's sessions see it."""
    with store.engine.connect() as connection:
        return str(connection.exec_driver_sql(f"SHOW {name}").scalar_one())


def test_a_batch_is_stored_whole_or_not_at_all(store: SqlStore) -> None:
    # The requests are fine; one prediction's row index is past any integer column. On
    # PostgreSQL the requests' COPY once committed on its own, leaving calls without rows.
    good = events(range(3))
    poisoned = EventBatch(good.requests, [*good.predictions[:2], prediction(2, row=2**64)])
    with pytest.raises(StorageDataError, match=r"cannot take this data|refused the data"):
        store.write(poisoned)
    assert (count(store, requests), count(store, predictions)) == (0, 0)
    # The refusal is the data's: the same store takes the next batch as usual.
    assert store.write(good).requests_written == 3


def test_nul_characters_and_lone_surrogates_in_json_are_stored_as_replacement(
    store: SqlStore,
) -> None:
    # PostgreSQL's JSON refuses \u0000 outright, which once failed whole batches there.
    row = prediction(0, features={"name": "a\x00b", "k\x00": "\udcff"})
    summary = store.write(EventBatch([request(0)], [row]))
    assert summary.predictions_written == 1
    frame = store.read_predictions("churn", T0, T0 + timedelta(hours=1))
    assert frame["features"].tolist() == [{"name": "a\ufffdb", "k\ufffd": "\ufffd"}]
