"""PostgreSQL specifics: the COPY fast path and daily partitions of the event tables."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.exc import DBAPIError

from modeltap.store.tables import PARTITIONED

log = logging.getLogger("modeltap.store")

# Arbitrary constant that serialises partition creation across every writer of the database.
_PARTITION_LOCK = 0x6D74_7061  # "mtpa"
_PARTITION_NAME = re.compile(r"^(?P<table>[a-z_]+)_p(?P<day>\d{8})$")


def copy_insert_ignore(
    connection: Connection,
    table: Table,
    rows: Sequence[Sequence[Any]],
    json_columns: Iterable[str],
    dumps: Callable[[Any], str],
) -> int:
    """Insert ``rows`` (tuples in column order) skipping existing keys; returns rows added.

    First try: COPY straight into the table inside a savepoint, the fastest load
    PostgreSQL has. Almost every batch is new, so that usually is the whole story. If any
    row already exists (a redelivery), the savepoint is rolled back and the batch goes the
    careful way: COPY into a session-local staging table, then one INSERT … SELECT …
    ON CONFLICT DO NOTHING, which keeps idempotency in the database where concurrent
    writers cannot race it.
    """
    if not rows:
        return 0
    columns = [column.name for column in table.columns]
    as_json = {columns.index(name) for name in json_columns}
    prepared = (
        [
            [dumps(v) if i in as_json and v is not None else v for i, v in enumerate(row)]
            for row in rows
        ]
        if as_json
        else rows
    )
    column_list = ", ".join(f'"{name}"' for name in columns)
    raw = connection.connection.driver_connection
    if raw is None:  # pragma: no cover - only for detached connections
        raise RuntimeError("connection has no driver connection")
    try:
        return _copy_insert_ignore(raw, table, column_list, prepared)
    except psycopg.Error as error:
        # Raised by the raw driver connection, below SQLAlchemy: wrap it as SQLAlchemy
        # would, so the store's error translation sees it like any other.
        raise DBAPIError.instance(
            f"COPY {table.name}", None, error, psycopg.Error, connection_invalidated=False
        ) from error


def _copy_insert_ignore(raw: Any, table: Table, column_list: str, rows: Any) -> int:
    with raw.cursor() as cursor:
        if raw.info.transaction_status == TransactionStatus.IDLE:
            # Open the caller's transaction first: psycopg's transaction() on an idle
            # connection is a transaction of its own, which would commit this table's rows
            # even if a later table of the same batch fails (half a call stored).
            cursor.execute("SELECT 1")
        try:
            with raw.transaction():  # a savepoint within the caller's transaction
                _copy(cursor, f'"{table.name}"', column_list, rows)
            return len(rows)
        except errors.UniqueViolation:
            pass  # some rows are there already; fall back to the careful path
        stage = f"_stage_{table.name}"
        cursor.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" (LIKE "{table.name}" INCLUDING DEFAULTS) '
            "ON COMMIT DELETE ROWS"
        )
        _copy(cursor, f'"{stage}"', column_list, rows)
        cursor.execute(
            f'INSERT INTO "{table.name}" ({column_list}) SELECT {column_list} FROM "{stage}" '
            "ON CONFLICT DO NOTHING"
        )
        inserted: int = cursor.rowcount
        cursor.execute(f'TRUNCATE "{stage}"')
    return max(inserted, 0)


def _copy(cursor: Any, target: str, column_list: str, rows: Sequence[Sequence[Any]]) -> None:
    with cursor.copy(f"COPY {target} ({column_list}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


class Partitions:
    """Creates the daily partitions writes need, and drops the ones retention expired."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._known: set[tuple[str, date]] = set()

    def ensure(self, moments: Iterable[datetime]) -> None:
        """Make sure a partition exists for every day touched, and try for the day after.

        Runs in its own short transaction before the data is written: creating a partition
        takes an exclusive lock on the parent table, which must not be held for the length
        of a batch, and which has to wait for every open reader of the table. So the days
        the rows need wait up to 10 s for it, while the day after (created early so midnight
        never waits) is only attempted briefly and retried on a later batch.
        """
        needed = {moment.astimezone(UTC).date() for moment in moments}
        ahead = {day + timedelta(days=1) for day in needed} - needed
        self._create(needed, lock_timeout="10s", required=True)
        self._create(ahead, lock_timeout="200ms", required=False)

    def _create(self, days: set[date], *, lock_timeout: str, required: bool) -> None:
        missing = sorted(
            (table, day) for table in PARTITIONED for day in days if (table, day) not in self._known
        )
        if not missing:
            return
        try:
            with self._engine.begin() as connection:
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{lock_timeout}'")
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PARTITION_LOCK}
                )
                for table, day in missing:
                    name = partition_name(table, day)
                    # Asking first keeps existing partitions from touching the parent's lock.
                    if (
                        connection.execute(
                            text("SELECT to_regclass(:name)"), {"name": name}
                        ).scalar()
                        is not None
                    ):
                        continue
                    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                    end = start + timedelta(days=1)
                    connection.exec_driver_sql(
                        f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}" '
                        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                    )
        except DBAPIError:
            if required:
                raise
            log.info("creating tomorrow's partitions waited too long on readers; will retry")
            return
        self._known.update(missing)

    def forget(self) -> None:
        """Drop the cache (another process may have dropped partitions)."""
        self._known.clear()

    def drop_before(self, connection: Connection, before: datetime) -> tuple[int, dict[str, int]]:
        """Drop partitions whose whole day lies before ``before``.

        Returns how many were dropped and how many rows they held, per parent table.
        """
        cutoff = before.astimezone(UTC)
        dropped = 0
        rows: dict[str, int] = {}
        for table in PARTITIONED:
            names = connection.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :table"
                ),
                {"table": table},
            ).scalars()
            for name in list(names):
                match = _PARTITION_NAME.match(name)
                if not match or match.group("table") != table:
                    continue
                day = datetime.strptime(match.group("day"), "%Y%m%d").replace(tzinfo=UTC)
                if day + timedelta(days=1) <= cutoff:
                    held = connection.exec_driver_sql(f'SELECT count(*) FROM "{name}"').scalar()
                    rows[table] = rows.get(table, 0) + int(held or 0)
                    connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
                    self._known.discard((table, day.date()))
                    dropped += 1
        return dropped, rows
