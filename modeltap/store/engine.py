"""Engines for the two supported databases, and driver errors translated at the boundary."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, make_url

from modeltap.codec import dumps
from modeltap.errors import InputError, StorageDataError, StorageError, StorageUnavailableError

# Execution option that marks a connection as a writer (SQLite takes the write lock up front).
WRITE = "modeltap_write"


def redact(url: str) -> str:
    """The URL with any password masked, safe for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str, *, pool_size: int = 5, parallel_queries: bool = True) -> Engine:
    """An engine for ``sqlite:///…`` or ``postgresql+psycopg://…`` with modeltap's settings.

    ``parallel_queries=False`` keeps PostgreSQL from giving one query several processes, for
    callers that already keep every core busy with queries of their own (see
    ``serial_options``).
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise InputError(
            f"cannot parse database URL {url!r}; expected sqlite:///path.db or "
            "postgresql+psycopg://user@host:port/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if parsed.get_backend_name() == "postgresql":
        connect_args: dict[str, Any] = {"connect_timeout": 10, "application_name": "modeltap"}
        if not parallel_queries:
            connect_args["options"] = serial_options(parsed.query.get("options"))
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            json_serializer=dumps,
            connect_args=connect_args,
        )
    raise InputError(
        f"unsupported database {parsed.get_backend_name()!r} in {redact(url)}; "
        "modeltap stores to sqlite:///path.db or postgresql+psycopg://…"
    )


def serial_options(given: str | tuple[str, ...] | None) -> str:
    """libpq ``options`` that turn PostgreSQL's parallel query off, after the URL's own.

    A backfill's worker processes already fill the cores with one window's queries each; a
    parallel plan then only adds a helper process per query to start and wait for. On two
    cores, two workers spent 44 s of the server's CPU on a month of windows with parallel
    plans and 31 s without, and the month took 72 s instead of 59 s.

    >>> serial_options("-c work_mem=64MB")
    '-c work_mem=64MB -c max_parallel_workers_per_gather=0'
    """
    own = " ".join(given) if isinstance(given, tuple) else (given or "")
    return f"{own} -c max_parallel_workers_per_gather=0".strip()


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        parent = Path(database).expanduser().resolve().parent
        if not parent.is_dir():
            raise InputError(f"directory {parent} for the SQLite database does not exist")
    engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=dumps)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy decide when transactions begin (see _on_begin), and use WAL so
        # readers never block the writer.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that later needs the write lock fails at once with
        # "database is locked" when another writer holds it, busy_timeout or not;
        # taking the lock at BEGIN makes concurrent writers wait their turn instead.
        immediate = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    """Turn driver exceptions into modeltap's, naming the database without its password."""
    try:
        yield
    except exc.OperationalError as error:
        if _is_unreachable(error):
            raise StorageUnavailableError(
                f"cannot reach the database at {redact(str(engine.url))}: "
                f"{_first_line(error.orig)}; is it running, and is storage.url right?"
            ) from error
        raise StorageError(f"database error: {_first_line(error.orig)}") from error
    except (exc.DataError, exc.IntegrityError) as error:
        message = f"the database refused the data: {_first_line(error.orig)}"
        raise StorageDataError(message) from error
    except exc.DBAPIError as error:
        raise StorageError(f"database error: {_first_line(error.orig)}") from error


def _is_unreachable(error: exc.OperationalError) -> bool:
    if error.connection_invalidated:
        return True
    text = str(error.orig).lower()
    return any(
        marker in text
        for marker in (
            "connection refused",
            "could not connect",
            "connection failed",
            "server closed the connection",
            "timeout expired",
            "unable to open",
            "terminating connection",
            "no such host",
            "name or service not known",
        )
    )


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error is not None and str(error).strip() else "?"
