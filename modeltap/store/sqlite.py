"""SQLite specifics: the bulk insert fast path."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table

from modeltap.codec import dumps


def sqlite_insert_ignore(
    connection: Connection, table: Table, rows: Sequence[Sequence[Any]], json_columns: Iterable[str]
) -> int:
    """Insert ``rows`` (tuples in column order) skipping existing keys; returns rows added.

    Straight to the driver's executemany with values already in their stored form: going
    through SQLAlchemy's per-row type processing made this path several times slower, and
    it runs on the sidecar's sink thread, where every microsecond is taken from the proxy.
    """
    if not rows:
        return 0
    names = [column.name for column in table.columns]
    as_json = {names.index(name) for name in json_columns}
    as_time = {index for index, name in enumerate(names) if name == "ts"}
    statement = (
        f'INSERT OR IGNORE INTO "{table.name}" ({", ".join(names)}) '
        f"VALUES ({', '.join('?' * len(names))})"
    )
    prepared = [
        tuple(
            _text_time(value)
            if index in as_time
            else dumps(value)
            if index in as_json and value is not None
            else value
            for index, value in enumerate(row)
        )
        for row in rows
    ]
    result = connection.exec_driver_sql(statement, prepared)
    return max(result.rowcount, 0)


def _text_time(value: datetime) -> str:
    # The same fixed-width naive-UTC text UTCDateTime stores, so ranges compare as text.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
