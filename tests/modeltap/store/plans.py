"""What the store sends to the database, and how the database plans to run it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


@contextmanager
def statements_sent(engine: Engine, pattern: str) -> Iterator[list[tuple[str, Any]]]:
    """Collects (SQL, parameters) of every statement matching ``pattern`` run inside."""
    sent: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if re.search(pattern, statement):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", keep)


def plan(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """The database's plan for a statement, one line per step (SQLite or PostgreSQL)."""
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        return [str(row[-1]) for row in connection.exec_driver_sql(explain + statement, parameters)]
