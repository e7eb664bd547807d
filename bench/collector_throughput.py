"""Collector throughput and the costs around it, each beside its baseline in one run.

1. End to end: events already on a Kafka topic, `Consumer` (the code behind
   `monitor collect`) moving them into a fresh PostgreSQL database; events/s.
2. The store's write path (COPY, straight into the table while the batch is new) against
   psycopg's and SQLAlchemy's executemany of the same rows into the same kind of tables.
3. The sidecar's enqueue cost per captured request: recording metrics and offering the
   exchange to the capture queue, timed call by call (p50/p99).

It also reads the same events without a database through kafka-python and, when installed,
confluent-kafka (librdkafka), to show what the client library costs, and runs a sketch of
the collector's loop on confluent-kafka end to end, to show what switching would give.

Goals (issue #4): >= 30k events/s end to end; fast path >= 5x executemany; enqueue
p99 <= 50 us. Needs the services (`scripts/services.sh start`; MONITOR_TEST_POSTGRES_URL
and MONITOR_TEST_KAFKA from .state/services.env). Prints figures and ratios; asserts nothing.
Run: .venv/bin/python bench/collector_throughput.py [--events 200000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import CollectorRegistry
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql import insert as pg_insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import scratch_database
from collector.capture import Capturer, Exchange
from collector.kafka import client_settings, ensure_topics, from_message, to_message
from collector.metrics import SidecarMetrics
from collector.pipeline import Pipeline, PipelineSettings
from collector.spool import Spool
from modeltap.configload import load_config
from modeltap.events import CapturedEvent
from modeltap.schema import EventBatch, PredictionRecord, RequestRecord
from modeltap.store import SqlStore
from modeltap.store.tables import predictions, requests

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


def event(n: int) -> CapturedEvent:
    ts = T0 + timedelta(milliseconds=n)
    event_id = f"{n:032x}"
    request = RequestRecord(
        event_id=event_id,
        request_id=event_id,
        model="churn",
        version="v1",
        ts=ts,
        latency_ms=12.5,
        status_code=200,
        upstream_latency_ms=11.9,
        request_bytes=180,
        response_bytes=40,
    )
    row = PredictionRecord(
        event_id=event_id,
        row_index=0,
        request_id=event_id,
        model="churn",
        version="v1",
        ts=ts,
        features={"age": 30 + n % 50, "plan": "pro", "tenure_months": n % 72, "spend": 42.5},
        prediction=n % 2,
        score=0.73,
    )
    return CapturedEvent(request, (row,))


def end_to_end(bootstrap: str, url: str, count: int, processes: int) -> float:
    """Events/s from a full topic into the empty database ``url``, by ``processes`` collectors."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    # Batches of 5000, or smaller for a small run: the rate is timed from the first stored batch.
    collect = {"batch_size": min(5000, max(100, count // 10)), "batch_wait": "200ms"}
    config: dict[str, Any] = {
        "storage": {"url": url},
        "kafka": {
            "bootstrap_servers": [bootstrap],
            "partitions": 6,
            "consumer_group": f"{prefix}-collector",
            "topics": {
                "events": f"{prefix}.events",
                "labels": f"{prefix}.labels",
                "dead_letter": f"{prefix}.dead",
            },
        },
        "collect": collect,
    }
    kafka = load_config(None, {}, config).kafka
    settings = client_settings(kafka)
    ensure_topics(settings, kafka, [kafka.topics.events, kafka.topics.labels])
    producer = KafkaProducer(
        **settings, acks="all", compression_type="lz4", linger_ms=20, batch_size=512 * 1024
    )
    for n in range(count):
        key, value, headers = to_message(event(n), "/bench")
        producer.send(kafka.topics.events, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()
    SqlStore.open(url, migrate=True).close()

    with tempfile.TemporaryDirectory() as scratch:
        workers = []
        started = time.perf_counter()
        for index in range(processes):
            path = Path(scratch) / f"collect-{index}.yaml"
            path.write_text(
                yaml.safe_dump(
                    config | {"collect": collect | {"metrics_listen": f"127.0.0.1:{free_port()}"}}
                )
            )
            workers.append(
                subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "monitor"),
                        "--config",
                        str(path),
                        "collect",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        # Timed from the first stored event to the last: process start-up and the group's
        # first rebalance are not throughput.
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as connection:
            stored, first = 0, 0
            while stored < count:
                row = connection.execute("SELECT count(*) FROM requests").fetchone()
                stored = int(row[0]) if row else 0
                if stored and not first:
                    first, started = stored, time.perf_counter()
                time.sleep(0.05)
        elapsed = time.perf_counter() - started
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(60)
    return (count - first) / elapsed


def fill_topic(bootstrap: str, prefix: str, count: int) -> str:
    """A new 6-partition topic holding ``count`` captured events; its name."""
    topic = f"{prefix}{uuid.uuid4().hex[:8]}"
    kafka = load_config(
        None, {}, {"kafka": {"bootstrap_servers": [bootstrap], "partitions": 6}}
    ).kafka
    ensure_topics(client_settings(kafka), kafka, [topic])
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type="lz4",
        linger_ms=20,
        batch_size=512 * 1024,
    )
    for n in range(count):
        key, value, headers = to_message(event(n), "/bench")
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()
    return topic


def confluent_consumer(bootstrap: str, topic: str, group: str) -> Any:
    """A confluent-kafka consumer of ``topic`` from its start, committing by hand."""
    from confluent_kafka import Consumer  # optional: the callers check it is installed

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    return consumer


def decode_confluent(message: Any) -> tuple[str, Any]:
    """A confluent-kafka message through the collector's own decoder."""
    raw: Any = message.headers() or []
    pairs = [(str(name), value if isinstance(value, bytes) else None) for name, value in raw]
    return from_message(message.key(), message.value(), pairs)


def confluent_end_to_end(bootstrap: str, url: str, count: int) -> float | None:
    """Events/s into the empty database ``url`` by a sketch of the collector on confluent-kafka.

    The same loop as `Consumer.run` without its dead-letter and label handling: batches of
    5000 decoded by the same code, written through the same store on a writer thread while
    the next batch is read, offsets committed after each write. It answers one question:
    would switching the consumer to librdkafka reach the goal?
    """
    try:
        from confluent_kafka import TopicPartition
    except ImportError:
        return None
    topic = fill_topic(bootstrap, "sketch", count)
    store = SqlStore.open(url, migrate=True)
    consumer = confluent_consumer(bootstrap, topic, f"{topic}-sketch")
    writer = ThreadPoolExecutor(max_workers=1)
    in_flight: tuple[Future[Any], list[TopicPartition]] | None = None

    def settle() -> None:
        if in_flight is not None:
            in_flight[0].result()
            consumer.commit(offsets=in_flight[1], asynchronous=False)

    read, started = 0, 0.0
    while read < count:
        messages = consumer.consume(num_messages=5000, timeout=1.0)
        requests: list[RequestRecord] = []
        rows: list[PredictionRecord] = []
        last: dict[int, int] = {}
        for message in messages:
            if message.error():
                continue
            started = started or time.perf_counter()
            _, captured = decode_confluent(message)
            requests.append(captured.request)
            rows.extend(captured.predictions)
            last[int(message.partition() or 0)] = int(message.offset() or 0)
            read += 1
        if not requests:
            continue
        settle()
        offsets = [TopicPartition(topic, p, offset + 1) for p, offset in last.items()]
        in_flight = (writer.submit(store.write, EventBatch(requests, rows)), offsets)
    settle()
    elapsed = time.perf_counter() - started
    writer.shutdown()
    consumer.close()
    store.close()
    return count / elapsed


def consume_only(bootstrap: str, count: int) -> tuple[float, float | None]:
    """Messages/s read and decoded (no database) by kafka-python, and by confluent-kafka."""
    topic = fill_topic(bootstrap, "read", count)

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}-a",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
    )
    read, started = 0, 0.0
    while read < count:
        for messages in consumer.poll(timeout_ms=1000).values():
            started = started or time.perf_counter()
            for message in messages:
                from_message(message.key, message.value, message.headers)
                read += 1
    ours = count / (time.perf_counter() - started)
    consumer.close()
    if importlib.util.find_spec("confluent_kafka") is None:
        return ours, None
    other = confluent_consumer(bootstrap, topic, f"{topic}-b")
    read, started = 0, 0.0
    while read < count:
        for message in other.consume(num_messages=5000, timeout=1.0):
            if message.error():
                continue
            started = started or time.perf_counter()
            decode_confluent(message)
            read += 1
    theirs = count / (time.perf_counter() - started)
    other.close()
    return ours, theirs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_paths(url: str, count: int) -> dict[str, float]:
    """Seconds to store ``count`` events by each path, into the same fresh tables of ``url``.

    fast: the store (COPY straight into the table: every batch here is new); executemany:
    psycopg's cursor.executemany of a one-row INSERT … ON CONFLICT (the plain DBAPI way);
    sqlalchemy: SQLAlchemy Core's executemany, which batches into multi-row VALUES.
    """
    events = [event(n) for n in range(count)]
    request_rows = [_request_row(e.request) for e in events]
    prediction_rows = [_prediction_row(row) for e in events for row in e.predictions]
    seconds: dict[str, float] = {}
    chunk = 5000
    store = SqlStore.open(url, migrate=True)
    store.write(EventBatch([events[0].request]))  # create the day's partitions first

    def fresh() -> None:
        with store.engine.begin() as connection:
            connection.exec_driver_sql("TRUNCATE requests, predictions")

    fresh()
    started = time.perf_counter()
    for first in range(0, count, chunk):
        part = events[first : first + chunk]
        store.write(
            EventBatch([e.request for e in part], [row for e in part for row in e.predictions])
        )
    seconds["fast"] = time.perf_counter() - started

    fresh()
    columns = {table: [c.name for c in table.columns] for table in (requests, predictions)}
    started = time.perf_counter()
    with psycopg.connect(url.replace("+psycopg", "")) as raw, raw.cursor() as cur:
        for table, rows in ((requests, request_rows), (predictions, prediction_rows)):
            names = columns[table]
            cur.executemany(
                f"INSERT INTO {table.name} ({', '.join(names)}) VALUES "
                f"({', '.join(['%s'] * len(names))}) ON CONFLICT DO NOTHING",
                [
                    tuple(
                        Jsonb(row[n]) if n in ("features", "prediction") else row[n] for n in names
                    )
                    for row in rows
                ],
            )
    seconds["executemany"] = time.perf_counter() - started

    fresh()
    started = time.perf_counter()
    with store.engine.begin() as connection:
        for first in range(0, count, chunk):
            connection.execute(
                pg_insert(requests).on_conflict_do_nothing(),
                request_rows[first : first + chunk],
            )
            connection.execute(
                pg_insert(predictions).on_conflict_do_nothing(),
                prediction_rows[first : first + chunk],
            )
    seconds["sqlalchemy"] = time.perf_counter() - started
    store.close()
    return seconds


def _request_row(r: RequestRecord) -> dict[str, Any]:
    return {
        "event_id": r.event_id,
        "ts": r.ts,
        "request_id": r.request_id,
        "model": r.model,
        "version": r.version,
        "latency_ms": r.latency_ms,
        "upstream_latency_ms": r.upstream_latency_ms,
        "status_code": r.status_code,
        "request_bytes": r.request_bytes,
        "response_bytes": r.response_bytes,
        "error": r.error,
        "capture_note": r.capture_note,
    }


def _prediction_row(p: PredictionRecord) -> dict[str, Any]:
    return {
        "event_id": p.event_id,
        "row_index": p.row_index,
        "ts": p.ts,
        "request_id": p.request_id,
        "model": p.model,
        "version": p.version,
        "label_key": p.label_key,
        "instance_id": p.instance_id,
        "features": p.features,
        "prediction": p.prediction,
        "score": p.score,
    }


def enqueue_cost(calls: int) -> tuple[float, float, float, float]:
    """(p50, p99) microseconds of offer() alone, then of metrics + offer (the request path)."""

    class NullSink:
        name = "null"

        async def write(self, events: object) -> list[Any]:
            return []

        async def close(self) -> None:
            return None

    async def measure() -> tuple[list[int], list[int]]:
        registry = CollectorRegistry()
        metrics = SidecarMetrics(registry)
        with tempfile.TemporaryDirectory() as scratch:
            pipeline = Pipeline(
                Capturer({}),
                NullSink(),
                Spool(Path(scratch), 10**9),
                metrics,
                PipelineSettings(
                    queue_size=calls + 10,
                    queue_max_bytes=10**12,
                    batch_size=calls + 10,
                    flush_interval=3600,
                    sink_timeout=5,
                ),
            )
            body = b'{"instances": [[1, 2, 3, 4]]}'
            offer_only, recorded = [], []

            def exchange(event_id: str) -> Exchange:
                return Exchange(
                    event_id=event_id,
                    request_id=event_id,
                    model="churn",
                    version="v1",
                    started=T0,
                    latency_ms=1.2,
                    status=200,
                    upstream_latency_ms=1.0,
                    request_body=body,
                    response_body=b'{"predictions": [1]}',
                )

            for n in range(calls):
                offered = exchange(f"{n:032x}")
                started = time.perf_counter_ns()
                pipeline.offer(offered)
                offer_only.append(time.perf_counter_ns() - started)
            for n in range(calls):
                offered = exchange(f"x{n:031x}")
                started = time.perf_counter_ns()
                metrics.observe(offered)
                pipeline.offer(offered)
                recorded.append(time.perf_counter_ns() - started)
        return offer_only, recorded

    offer_only, recorded = asyncio.run(measure())

    def quantiles(samples: list[int]) -> tuple[float, float]:
        cuts = statistics.quantiles(samples, n=100)
        return cuts[49] / 1000, cuts[98] / 1000

    return (*quantiles(offer_only), *quantiles(recorded))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    arguments = parser.parse_args()
    count = 5000 if arguments.quick else arguments.events
    bootstrap = os.environ.get("MONITOR_TEST_KAFKA")
    admin_url = os.environ.get("MONITOR_TEST_POSTGRES_URL")
    if not bootstrap or not admin_url:
        raise SystemExit(
            "start the services and source .state/services.env first (scripts/services.sh start)"
        )

    with scratch_database(admin_url) as url:
        one = end_to_end(bootstrap, url, count, processes=1)
    with scratch_database(admin_url) as url:
        two = end_to_end(bootstrap, url, count, processes=2)
    with scratch_database(admin_url) as url:
        sketch = confluent_end_to_end(bootstrap, url, count)
    ours, theirs = consume_only(bootstrap, count)
    with scratch_database(admin_url) as url:
        paths = write_paths(url, min(count, 50_000))
    offer_p50, offer_p99, path_p50, path_p99 = enqueue_cost(20_000 if arguments.quick else 200_000)
    written = min(count, 50_000)
    print(f"collector throughput ({count} events; 1 request + 1 prediction row each)")
    best = max(one, two)
    print(
        f"  Kafka -> PostgreSQL end to end: {one:,.0f} events/s with one `monitor collect`, "
        f"{two:,.0f} with two in the group (goal >= 30,000)  "
        f"{'meets goal' if best >= 30_000 else 'MISSES goal'}"
    )
    if sketch:
        print(
            f"  the same loop sketched on confluent-kafka (no dead letters, labels): "
            f"{sketch:,.0f} events/s"
            + (f" ({sketch / one:.1f}x one `monitor collect`)" if one else "")
        )
    print(
        f"  reading and decoding only: kafka-python {ours:,.0f} msg/s"
        + (
            f", confluent-kafka {theirs:,.0f} msg/s ({theirs / ours:.1f}x)"
            if theirs
            else " (pip install confluent-kafka to compare)"
        )
    )
    fast, plain, batched = paths["fast"], paths["executemany"], paths["sqlalchemy"]
    print(
        f"  store fast path: {written / fast:,.0f} events/s; psycopg executemany: "
        f"{written / plain:,.0f} events/s; ratio {plain / fast:.1f}x (goal >= 5x)  "
        f"{'meets goal' if plain / fast >= 5 else 'MISSES goal'}"
    )
    print(
        f"  (SQLAlchemy's batched executemany, multi-row VALUES: {written / batched:,.0f} "
        f"events/s; the fast path is {batched / fast:.1f}x that)"
    )
    print(
        f"  enqueue (offer) per event: p50 {offer_p50:.2f} us, p99 {offer_p99:.2f} us; "
        f"with metrics: p50 {path_p50:.2f} us, p99 {path_p99:.2f} us (goal p99 <= 50 us)  "
        f"{'meets goal' if path_p99 <= 50 else 'MISSES goal'}"
    )


if __name__ == "__main__":
    main()
