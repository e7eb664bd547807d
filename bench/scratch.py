"""A throwaway PostgreSQL database for one benchmark run, dropped however the run ends."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
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
