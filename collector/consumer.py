"""`monitor collect`: a consumer group that moves events and labels from Kafka to the store.

Exactly-once in effect: each batch is written in one database transaction through the
store's fast path, and offsets are committed only after that commit. A crash before the
offset commit means the batch is delivered again, and the store ignores events it already
has (idempotent on the event id) while label upserts simply land twice. A message that can
never be stored (not a CloudEvent, an unknown type, a field out of range) goes to the
dead-letter topic with the reason in a header, so it never blocks its partition. While the
database is down the batch is retried with back-off and nothing is committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from collector.kafka import INFERENCE_TYPE, client_settings, ensure_topics, from_message
from modeltap.config import MonitorConfig
from modeltap.errors import InputError, StorageError
from modeltap.events import CapturedEvent
from modeltap.labels import parse_labels
from modeltap.schema import EventBatch, LabelRecord, PredictionRecord, RequestRecord, WriteSummary
from modeltap.store import Store

log = logging.getLogger("modeltap.collect")

ERROR_HEADER = "modeltap_error"
ORIGIN_HEADER = "modeltap_origin"


class ConsumerMetrics:
    """What `monitor collect` exposes on its metrics port."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumed = Counter(
            "modeltap_collector_consumed_messages", "Messages read from Kafka.", registry=registry
        )
        self.written = Counter(
            "modeltap_collector_written_events",
            "Requests and labels newly stored (redeliveries excluded).",
            registry=registry,
        )
        self.duplicates = Counter(
            "modeltap_collector_duplicate_events",
            "Events already stored when they arrived again.",
            registry=registry,
        )
        self.dead_lettered = Counter(
            "modeltap_collector_dead_lettered_messages",
            "Messages sent to the dead-letter topic.",
            registry=registry,
        )
        self.store_errors = Counter(
            "modeltap_collector_store_errors",
            "Batches the database refused; they are retried.",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "modeltap_collector_batch_duration_seconds",
            "Time from a batch's first message to its offsets being committed.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.lag = Gauge(
            "modeltap_collector_lag_messages",
            "Messages in the assigned partitions not yet consumed.",
            registry=registry,
        )


@dataclass
class _Batch:
    """Decoded messages waiting for one transaction, and where each partition got to."""

    requests: list[RequestRecord] = field(default_factory=list)
    predictions: list[PredictionRecord] = field(default_factory=list)
    labels: list[LabelRecord] = field(default_factory=list)
    poison: list[tuple[Any, str]] = field(default_factory=list)
    first: dict[TopicPartition, int] = field(default_factory=dict)
    last: dict[TopicPartition, int] = field(default_factory=dict)
    count: int = 0
    started: float = 0.0


class Consumer:
    """The consume → store → commit loop; one instance per process, many per group."""

    def __init__(
        self,
        config: MonitorConfig,
        store: Store,
        metrics: ConsumerMetrics,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._store = store
        self._metrics = metrics
        self._clock = clock
        kafka = config.kafka
        self._topics = [kafka.topics.events, kafka.topics.labels]
        settings = client_settings(kafka)
        ensure_topics(settings, kafka, [*self._topics, kafka.topics.dead_letter])
        self._consumer = KafkaConsumer(
            **settings,
            group_id=kafka.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=config.collect.batch_size,
            # Long enough to ride out a database outage while retrying a batch; a member
            # stuck longer is dropped from the group, and its partitions move on.
            max_poll_interval_ms=120_000,
            # Partitions added later (or a topic whose leaders were still being elected when
            # the group formed) are noticed within this, not kafka-python's five minutes.
            metadata_max_age_ms=30_000,
        )
        self._producer = KafkaProducer(**settings, acks="all", retries=5, linger_ms=5)
        self._batch = _Batch()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modeltap-store")
        self._writing: tuple[_Batch, Future[WriteSummary | None]] | None = None
        self._lag_checked = 0.0
        self._stop = threading.Event()
        # The group's first assignment is computed from this consumer's metadata: a topic
        # it knows no partitions of yet gets none assigned, until a refresh notices. Ask for
        # the topics' partitions first, so the first assignment is whole.
        deadline = time.monotonic() + 30
        while (
            not all(self._consumer.partitions_for_topic(topic) for topic in self._topics)
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        self._consumer.subscribe(self._topics, listener=_Rebalance())

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is stored and committed first.

        Reading and writing overlap: while one batch is written (on the store's thread),
        the next is fetched and decoded here. At most one batch is in flight, so offsets
        are still committed in order, and always from this thread, after the write.
        """
        self._stop = stop
        settings = self._config.collect
        wait = settings.batch_wait.total_seconds()
        try:
            while not stop.is_set():
                remaining = (
                    wait
                    if not self._batch.count
                    else max(0.0, self._batch.started + wait - time.monotonic())
                )
                try:
                    records = self._consumer.poll(
                        timeout_ms=int(remaining * 1000),
                        max_records=max(1, settings.batch_size - self._batch.count),
                    )
                except KafkaError as error:  # the client reconnects on its own
                    log.warning("polling Kafka failed (%s); retrying", error)
                    stop.wait(1.0)
                    continue
                for messages in records.values():
                    for message in messages:
                        self._add(message)
                self._settle(block=False)
                due = self._batch.count and (
                    self._batch.count >= settings.batch_size
                    or time.monotonic() - self._batch.started >= wait
                )
                if due:
                    self._hand_over()
                self._update_lag()
            self._flush_now()
        finally:
            self._writer.shutdown(wait=True)
            # Leaving the group hands our partitions to the others at once.
            self._consumer.close()
            self._producer.close(timeout=10)

    def _add(self, message: Any) -> None:
        batch = self._batch
        if not batch.count:
            batch.started = time.monotonic()
        batch.count += 1
        self._metrics.consumed.inc()
        partition = TopicPartition(message.topic, message.partition)
        batch.first.setdefault(partition, message.offset)
        batch.last[partition] = message.offset
        try:
            kind, payload = from_message(message.key, message.value, message.headers or [])
            if kind == INFERENCE_TYPE:
                event: CapturedEvent = payload
                batch.requests.append(event.request)
                batch.predictions.extend(event.predictions)
            else:
                batch.labels.extend(
                    parse_labels([payload], self._clock(), where="label", indexed=False)
                )
        except InputError as error:
            batch.poison.append((message, str(error)))

    def _hand_over(self) -> None:
        """Start writing the batch in hand (after the one in flight is committed)."""
        self._settle(block=True)
        batch, self._batch = self._batch, _Batch()
        if batch.count:
            self._writing = (batch, self._writer.submit(self._store_batch, batch))

    def _flush_now(self) -> None:
        """Write and commit everything read so far, before returning."""
        self._hand_over()
        self._settle(block=True)

    def _settle(self, *, block: bool) -> None:
        """Commit the offsets of the batch in flight once its write is done."""
        if self._writing is None:
            return
        batch, future = self._writing
        if not block and not future.done():
            return
        self._writing = None
        summary = future.result()
        if summary is None:
            return  # stopped before the database took it: it is read again next time
        # Counted once stored, whether or not the commit below still may happen.
        self._metrics.written.inc(
            summary.requests_written + summary.labels_written + summary.labels_updated
        )
        self._metrics.duplicates.inc(summary.requests_duplicate)
        self._commit(
            {
                partition: OffsetAndMetadata(offset + 1, "", -1)
                for partition, offset in batch.last.items()
            }
        )
        self._metrics.batch_seconds.observe(time.monotonic() - batch.started)

    def _store_batch(self, batch: _Batch) -> WriteSummary | None:
        """Store the batch and dead-letter its poison, retrying while either fails.

        Runs on the writer thread. None means: stopped before it was stored.
        """
        delay = 0.2
        while True:
            try:
                summary = self._store.write(
                    EventBatch(batch.requests, batch.predictions, batch.labels)
                )
                self._dead_letter(batch.poison)
                return summary
            except (StorageError, KafkaError) as error:
                self._metrics.store_errors.inc()
                log.warning(
                    "storing a batch of %d failed (%s); retrying in %.1fs",
                    batch.count,
                    error,
                    delay,
                )
                if self._stop.wait(delay):
                    log.info("stopping; %d uncommitted message(s) will be read again", batch.count)
                    return None
                delay = min(delay * 2, self._config.collect.retry_max.total_seconds())

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Commit after the database has the batch, retrying while the broker is away."""
        delay = 0.2
        while True:
            try:
                self._consumer.commit(offsets)
                return
            except CommitFailedError as error:
                # The group moved these partitions elsewhere; their new owner re-reads from
                # the last commit and the store ignores what this batch already wrote.
                log.info("offsets not committed after a rebalance: %s", error)
                return
            except KafkaError as error:
                log.warning("committing offsets failed (%s); retrying in %.1fs", error, delay)
                if self._stop.wait(delay):
                    return  # stored already; the batch is read again next time and ignored
                delay = min(delay * 2, self._config.collect.retry_max.total_seconds())

    def _dead_letter(self, poison: list[tuple[Any, str]]) -> None:
        if not poison:
            return
        topic = self._config.kafka.topics.dead_letter
        futures = []
        for message, reason in poison:
            log.warning(
                "dead-lettering %s/%d@%d: %s",
                message.topic,
                message.partition,
                message.offset,
                reason,
            )
            headers = [
                *(message.headers or []),
                (ERROR_HEADER, reason.encode()),
                (ORIGIN_HEADER, f"{message.topic}/{message.partition}/{message.offset}".encode()),
            ]
            futures.append(
                self._producer.send(topic, key=message.key, value=message.value, headers=headers)
            )
        self._producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=0)
        self._metrics.dead_lettered.inc(len(poison))

    def _update_lag(self) -> None:
        if time.monotonic() - self._lag_checked < 1.0:
            return
        self._lag_checked = time.monotonic()
        assigned = self._consumer.assignment()
        if not assigned:
            return
        try:
            ends = self._consumer.end_offsets(list(assigned))
            self._metrics.lag.set(
                sum(
                    max(0, end - self._consumer.position(partition))
                    for partition, end in ends.items()
                )
            )
        except KafkaError:
            log.debug("lag not available right now", exc_info=True)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python is untyped
    """Says when partitions move; it must not commit or flush here.

    kafka-python 3 calls this on its network thread, where a blocking consumer call (a
    commit) raises and leaves the consumer half rebalanced. Nothing needs doing: the batch in
    hand is written and committed as usual once poll() returns; a commit for partitions that
    moved away is refused (``CommitFailedError``, logged), and their new owner re-reads them
    from the last commit, which the idempotent store turns into duplicates, not losses.
    """

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.debug("partitions revoked: %d", len(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("assigned %d partition(s)", len(assigned))
