"""What several benches share: a scratch store (dropped however the run ends) and a timer."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import make_url


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server ``server_url`` points at; yields its URL."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    server = make_url(server_url)
    admin = server.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_store(postgres: str | None) -> Iterator[tuple[str, str]]:
    """(database name, URL) of a scratch store: on ``postgres`` if given, else an SQLite file."""
    if postgres:
        with scratch_database(postgres) as url:
            yield "PostgreSQL", url
        return
    with tempfile.TemporaryDirectory() as directory:
        yield "SQLite", f"sqlite:///{Path(directory) / 'bench.db'}"


def add_store_options(parser: argparse.ArgumentParser, postgres: str | None = None) -> None:
    """--postgres URL (default ``postgres``) and --sqlite, read by ``scratch_store``."""
    parser.add_argument(
        "--postgres",
        default=postgres,
        help="a PostgreSQL server (a scratch database is created and dropped)",
    )
    parser.add_argument("--sqlite", action="store_true", help="an SQLite file instead")


@contextmanager
def store_from_options(options: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """The scratch store the options of ``add_store_options`` ask for."""
    with scratch_store(None if options.sqlite else options.postgres) as store:
        yield store


def median_ms(work: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls, in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
