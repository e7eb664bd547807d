"""Where captured events go: one small interface, chosen by URL.

``sqlite:///…`` and ``postgresql+psycopg://…`` write through the store (idempotent on the
event id, so a batch sent twice — after a timeout, or replayed from the spool — is stored
once). ``kafka://host:port/topic`` publishes to Kafka for `monitor collect` to store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from modeltap.config import KafkaConfig
from modeltap.errors import ConfigError, StorageDataError
from modeltap.events import CapturedEvent, to_batch
from modeltap.store import SqlStore, Store
from modeltap.store.engine import redact


@dataclass(frozen=True, slots=True)
class Refused:
    """An event the sink will never take (its data, not the sink, is at fault), and why."""

    event: CapturedEvent
    reason: str


class Sink(Protocol):
    """Accepts batches of events; raises on failure so the caller can spool them.

    A write stores every event it can and returns the ones refused for good (say, a value
    the database cannot hold): those are set aside by the caller, never retried, so one
    bad event cannot hold back the rest of its batch or the batches behind it.
    """

    name: str

    async def write(self, events: Sequence[CapturedEvent]) -> Sequence[Refused]: ...

    async def close(self) -> None: ...


class SqlSink:
    """Writes straight into SQLite or PostgreSQL through the store.

    The store is synchronous, so writes run on one dedicated thread: a database that hangs
    ties up that thread only, never the event loop or the thread the spool writes with.
    """

    def __init__(self, url: str, *, migrate: bool) -> None:
        self.name = redact(url)
        self._url = url
        self._migrate = migrate
        self._store: SqlStore | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modeltap-sink")

    async def write(self, events: Sequence[CapturedEvent]) -> Sequence[Refused]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._write, list(events))

    def _write(self, events: list[CapturedEvent]) -> list[Refused]:
        if self._store is None:
            # Opened lazily: a database that is down at start-up must not stop the sidecar.
            self._store = SqlStore.open(self._url, migrate=self._migrate)
        return isolate(self._store, events)

    async def close(self) -> None:
        # A write stuck on a dead database must not hold up shutdown; its batch is spooled.
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._store is not None:
            self._store.close()


def isolate(store: Store, events: list[CapturedEvent]) -> list[Refused]:
    """Write ``events``; when the database refuses the data, find which events it refuses
    by halving the batch, store the others, and return the refused ones.

    Only a data error (``StorageDataError``) is split: a database that is down or busy
    fails every half alike, and that failure goes to the caller to spool the whole batch.
    Writes are idempotent, so halves already stored are not stored twice.
    """
    try:
        store.write(to_batch(events))
    except StorageDataError as error:
        if len(events) == 1:
            return [Refused(events[0], str(error))]
        middle = len(events) // 2
        return isolate(store, events[:middle]) + isolate(store, events[middle:])
    return []


def open_sink(url: str, kafka: KafkaConfig, *, timeout: float, source: str) -> Sink:
    """The sink for ``url``; the embedded SQLite default creates its own schema."""
    if url.startswith("sqlite:"):
        return SqlSink(url, migrate=True)
    if url.startswith("postgresql"):
        return SqlSink(url, migrate=False)
    if url.startswith("kafka://"):
        from collector.kafka_sink import KafkaSink  # noqa: PLC0415 - only Kafka users need it

        # Leave the pipeline a margin to spool before its own timeout gives up on the write.
        return KafkaSink(url, kafka, timeout=timeout * 0.8, source=source)
    raise ConfigError(
        f"sink {redact(url)} is not supported; use sqlite:///path.db, "
        "postgresql+psycopg://… or kafka://host:port/topic"
    )
