"""Sidecar → Kafka → `monitor collect` → PostgreSQL, on the real broker and database."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer

from collector.kafka import (
    INFERENCE_TYPE,
    client_settings,
    ensure_topics,
    label_message,
    to_message,
)
from modeltap.config import KafkaConfig
from modeltap.events import CapturedEvent
from modeltap.schema import PredictionRecord, RequestRecord
from tests.collector.conftest import CollectorProcess, SidecarProcess, kafka_config
from tests.collector.test_sidecar_faults import send, wait_for
from tests.conftest import PrivatePostgres

# real_clock: the broker (and Prometheus) keep their own clock, so the shifted-clock pass
# of `make test` leaves these out (see the marker in pyproject.toml).
pytestmark = [pytest.mark.integration, pytest.mark.real_clock]
T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def database(postgres_database: str) -> str:
    from modeltap.store import make_engine, upgrade

    engine = make_engine(postgres_database)
    upgrade(engine)
    engine.dispose()
    return postgres_database


def stored(url: str, table: str = "requests", column: str = "request_id") -> Counter[str]:
    try:
        with psycopg.connect(url.replace("+psycopg", "")) as connection:
            rows = connection.execute(f"SELECT {column} FROM {table}").fetchall()
    except psycopg.OperationalError:
        return Counter()
    return Counter(str(row[0]) for row in rows)


def event(n: int, model: str = "iris") -> CapturedEvent:
    request = RequestRecord(
        event_id=f"ev-{n}",
        request_id=f"rq-{n}",
        model=model,
        version="",
        ts=T0,
        latency_ms=1.0,
        status_code=200,
    )
    row = PredictionRecord(
        event_id=f"ev-{n}",
        row_index=0,
        request_id=f"rq-{n}",
        model=model,
        version="",
        ts=T0,
        features={"x": n},
        prediction=n % 2,
    )
    return CapturedEvent(request, (row,))


def publish(bootstrap: str, topic: str, messages: list[tuple[Any, bytes, list[Any]]]) -> None:
    prefix = topic.rsplit(".", 1)[0]
    config = KafkaConfig.model_validate(kafka_config(bootstrap, prefix))
    ensure_topics(client_settings(config), config, [topic])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value, headers in messages:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush(30)
    producer.close()


def collector_for(
    tmp_path: Path, bootstrap: str, prefix: str, url: str, **collect: Any
) -> CollectorProcess:
    config = {"storage": {"url": url}, "kafka": kafka_config(bootstrap, prefix), "collect": collect}
    return CollectorProcess(tmp_path, config)


def test_events_flow_from_sidecar_through_kafka_into_postgres(
    tmp_path: Path,
    model_server: str,
    kafka_bootstrap: str,
    prefix: str,
    database: str,
) -> None:
    kafka = kafka_config(kafka_bootstrap, prefix)
    sidecar = SidecarProcess(
        tmp_path, model_server, f"kafka://{kafka_bootstrap}/{prefix}.events", {"kafka": kafka}
    ).start()
    collector = collector_for(tmp_path, kafka_bootstrap, prefix, database).start()
    ids = send(sidecar.port, 200)
    wait_for(lambda: set(ids) <= set(stored(database)), 30, "events in PostgreSQL")
    assert max(stored(database)[i] for i in ids) == 1
    rows = stored(database, "predictions")
    assert all(rows[i] == 1 for i in ids)
    assert collector.metric("modeltap_collector_written_events_total") >= 200
    assert sidecar.stop() == 0
    assert collector.stop() == 0

    # What went over the wire: CloudEvents 1.0 in binary mode, keyed by model.
    consumer = KafkaConsumer(
        f"{prefix}.events",
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    message = next(iter(consumer))
    consumer.close()
    headers = dict(message.headers)
    assert message.key == b"iris"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == INFERENCE_TYPE.encode()
    assert headers["ce_source"] == b"/modeltap/sidecar/iris"
    assert headers["content-type"] == b"application/json"
    body = json.loads(message.value)
    assert headers["ce_id"] == body["event_id"].encode()
    assert datetime.fromisoformat(headers["ce_time"].decode()) == datetime.fromisoformat(body["ts"])


def test_poison_goes_to_the_dead_letter_topic_and_never_stalls(
    tmp_path: Path,
    kafka_bootstrap: str,
    prefix: str,
    database: str,
) -> None:
    good = [to_message(event(n), "/test") for n in range(20)]
    _key, value, headers = to_message(event(99), "/test")
    broken = json.loads(value)
    broken["status_code"] = "two hundred"
    poison = [
        (b"iris", b"{not json", headers),
        (b"iris", json.dumps(broken).encode(), headers),
        (b"iris", value, [(k, b"dev.someone.else" if k == "ce_type" else v) for k, v in headers]),
        (b"iris", b"plain bytes, no headers", []),
    ]
    publish(kafka_bootstrap, f"{prefix}.events", [*good[:10], *poison, *good[10:]])
    collector = collector_for(tmp_path, kafka_bootstrap, prefix, database).start()
    wait_for(lambda: len(stored(database)) == 20, 30, "the good events", collector.log)
    wait_for(
        lambda: collector.metric("modeltap_collector_dead_lettered_messages_total") == 4,
        10,
        "dead letters",
    )
    assert collector.stop() == 0

    consumer = KafkaConsumer(
        f"{prefix}.dead",
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    dead = [consumer_record for _, consumer_record in zip(range(4), consumer, strict=False)]
    consumer.close()
    reasons = [dict(message.headers)["modeltap_error"].decode() for message in dead]
    assert [message.value for message in dead] == [p[1] for p in poison]
    assert reasons[0].startswith("invalid event: not JSON")
    assert reasons[1].startswith("invalid event: status_code")
    assert "unknown event type 'dev.someone.else'" in reasons[2]
    assert reasons[3].startswith("not a CloudEvent in binary mode")
    assert all(
        dict(m.headers)["modeltap_origin"].startswith(f"{prefix}.events/".encode()) for m in dead
    )


def test_labels_arrive_through_their_topic(
    tmp_path: Path,
    kafka_bootstrap: str,
    prefix: str,
    database: str,
) -> None:
    labels = [
        label_message({"request_id": f"rq-{n}", "label": n % 2}, "/test", T0, f"lab-{n}")
        for n in range(10)
    ]
    labels.append(
        label_message({"request_id": "rq-3", "label": "late correction"}, "/test", T0, "lab-x")
    )
    labels.append(label_message({"label": 1}, "/test", T0, "lab-bad"))  # names no prediction
    publish(kafka_bootstrap, f"{prefix}.labels", labels)
    collector = collector_for(tmp_path, kafka_bootstrap, prefix, database).start()
    wait_for(
        lambda: len(stored(database, "labels", "label_key")) == 10, 30, "labels", collector.log
    )
    wait_for(
        lambda: collector.metric("modeltap_collector_dead_lettered_messages_total") == 1,
        10,
        "the bad label dead-lettered",
    )
    assert collector.stop() == 0
    with psycopg.connect(database.replace("+psycopg", "")) as connection:
        value = connection.execute(
            "SELECT value FROM labels WHERE label_key = 'r:rq-3:0'"
        ).fetchone()
    assert value is not None
    assert value[0] == "late correction"  # the later message won


def test_a_collector_killed_mid_batch_loses_and_doubles_nothing(
    tmp_path: Path,
    kafka_bootstrap: str,
    prefix: str,
    database: str,
) -> None:
    messages = [to_message(event(n), "/test") for n in range(20_000)]
    publish(kafka_bootstrap, f"{prefix}.events", messages)
    collector = collector_for(tmp_path, kafka_bootstrap, prefix, database, batch_size=500)
    collector.start()
    wait_for(lambda: len(stored(database)) > 2000, 60, "some batches stored")
    assert collector.stop(signal.SIGKILL) == -signal.SIGKILL
    partial = len(stored(database))
    assert partial < 20_000, "the kill should land mid-stream"
    collector.start()
    wait_for(lambda: len(stored(database)) == 20_000, 120, "everything after the restart")
    counts = stored(database)
    assert max(counts.values()) == 1
    assert collector.stop() == 0


def test_postgres_down_for_thirty_seconds_under_load(
    tmp_path: Path,
    kafka_bootstrap: str,
    prefix: str,
    private_postgres: PrivatePostgres,
) -> None:
    url = private_postgres.url
    collector = collector_for(tmp_path, kafka_bootstrap, prefix, url).start()
    total = 0

    def burst(count: int) -> None:
        nonlocal total
        publish(
            kafka_bootstrap,
            f"{prefix}.events",
            [to_message(event(total + n), "/test") for n in range(count)],
        )
        total += count

    burst(1000)
    wait_for(lambda: len(stored(url)) == 1000, 30, "the first burst")
    private_postgres.stop("immediate")
    outage_ends = time.monotonic() + 30
    while time.monotonic() < outage_ends:  # producers keep going during the outage
        burst(500)
        time.sleep(2)
    private_postgres.start()
    wait_for(lambda: len(stored(url)) == total, 90, f"all {total} events after the outage")
    counts = stored(url)
    assert max(counts.values()) == 1
    assert collector.metric("modeltap_collector_store_errors_total") > 0
    assert collector.stop() == 0


def test_a_member_joining_mid_stream_moves_partitions_and_loses_nothing(
    tmp_path: Path,
    kafka_bootstrap: str,
    prefix: str,
    database: str,
) -> None:
    # A rebalance with a batch in flight: kafka-python 3 refuses a blocking commit inside its
    # rebalance callback, which once left the first member re-reading and miscounting.
    messages = [to_message(event(n), "/test") for n in range(20_000)]
    publish(kafka_bootstrap, f"{prefix}.events", messages)
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    first = collector_for(first_dir, kafka_bootstrap, prefix, database, batch_size=500).start()
    wait_for(lambda: len(stored(database)) > 1000, 60, "the first member's batches")
    second = collector_for(second_dir, kafka_bootstrap, prefix, database, batch_size=500).start()
    wait_for(lambda: len(stored(database)) == 20_000, 120, "every event", first.log)
    assert max(stored(database).values()) == 1

    def written() -> float:
        name = "modeltap_collector_written_events_total"
        return first.metric(name) + second.metric(name)

    # Each event is counted as newly written exactly once, by whichever member stored it
    # (a batch is counted once its write settles, a moment after the rows are visible).
    wait_for(lambda: written() >= 20_000, 30, "every event counted")
    assert written() == 20_000
    assert first.stop() == 0
    assert second.stop() == 0
    for log in (first.log, second.log):
        text = log.read_text()
        assert "rebalance callback" not in text
        assert "polling Kafka failed" not in text
