"""Where captured events go: one small interface, chosen by URL.

``sqlite:///…`` and ``postgresql+psycopg://…`` write through the store (idempotent on the
event id, so a batch sent twice — after a timeout, or replayed from the spool — is stored
once). ``kafka://host:port/topic`` publishes to Kafka for `monitor collect` to store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from monitor.config import KafkaConfig
from monitor.errors import ConfigError
from monitor.events import CapturedEvent, to_batch
from monitor.store import SqlStore
from monitor.store.engine import redact


class Sink(Protocol):
    """Accepts batches of events; raises on failure so the caller can spool them."""

    name: str

    async def write(self, events: Sequence[CapturedEvent]) -> None: ...

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

    async def write(self, events: Sequence[CapturedEvent]) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._write, list(events))

    def _write(self, events: list[CapturedEvent]) -> None:
        if self._store is None:
            # Opened lazily: a database that is down at start-up must not stop the sidecar.
            self._store = SqlStore.open(self._url, migrate=self._migrate)
        self._store.write(to_batch(events))

    async def close(self) -> None:
        # A write stuck on a dead database must not hold up shutdown; its batch is spooled.
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._store is not None:
            self._store.close()


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
