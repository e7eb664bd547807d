"""The database sinks: SQLite and PostgreSQL, written through the store.

Writes are idempotent on the event id, so a batch sent twice (after a timeout, or
replayed from the spool) is stored once.

The store (SQLAlchemy, the PostgreSQL driver) is imported with the first write, on the
sink's thread, not when the sidecar starts: a sidecar is ready, and small, before its
database has been needed. An embedded SQLite database that is new or older than this version
is migrated by a short-lived ``monitor db upgrade`` process: Alembic and its scripts (about
8 MiB) are never freed once imported, and a sidecar should not carry them for the rest of its
life because it created its database once.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from collector.sinks.protocol import Refused
from modeltap.errors import SchemaOutOfDateError, StorageDataError, StorageError
from modeltap.events import CapturedEvent, to_batch

if TYPE_CHECKING:
    from modeltap.store import SqlStore, Store


class SqlSink:
    """Writes straight into SQLite or PostgreSQL through the store.

    The store is synchronous, so writes run on one dedicated thread: a database that hangs
    ties up that thread only, never the event loop or the thread the spool writes with.
    """

    def __init__(self, url: str) -> None:
        self.name = masked(url)
        self._url = url
        self._store: SqlStore | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modeltap-sink")

    async def write(self, events: Sequence[CapturedEvent]) -> Sequence[Refused]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._write, list(events))

    def _write(self, events: list[CapturedEvent]) -> list[Refused]:
        if self._store is None:
            # Opened lazily: a database that is down at start-up must not stop the sidecar.
            self._store = opened(self._url)
        return isolate(self._store, events)

    async def close(self) -> None:
        # A write stuck on a dead database must not hold up shutdown; its batch is spooled.
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._store is not None:
            self._store.close()


def opened(url: str) -> SqlStore:
    """The store at ``url``, a SQLite file migrated first by a child process if it must be."""
    from modeltap.store import SqlStore, open_store  # noqa: PLC0415 - see the module's docstring

    if not url.startswith("sqlite") or ":memory:" in url:
        # PostgreSQL is upgraded deliberately (open_store says so); an in-memory database
        # exists only in this process, so only this process can create its tables.
        return open_store(url)
    try:
        return SqlStore.open(url)
    except SchemaOutOfDateError:
        migrated = subprocess.run(  # noqa: S603 - our own interpreter and command
            [sys.executable, "-m", "monitor", "db", "upgrade", "--url", url],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if migrated.returncode != 0:
            said = (migrated.stderr.strip() or migrated.stdout.strip()).splitlines()
            raise StorageError(
                f"could not create the tables in {masked(url)}: "
                + (said[-1] if said else f"monitor db upgrade exited {migrated.returncode}")
            ) from None
        return SqlStore.open(url)


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


def masked(url: str) -> str:
    """``url`` with its password replaced by ``***``, for logs (the store's ``redact`` would
    load SQLAlchemy just to name the sink).

    >>> masked("postgresql+psycopg://app:s3cret@db:5432/modeltap")
    'postgresql+psycopg://app:***@db:5432/modeltap'
    >>> masked("sqlite:////var/lib/modeltap/capture.db")
    'sqlite:////var/lib/modeltap/capture.db'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
