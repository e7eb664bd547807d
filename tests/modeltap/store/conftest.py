"""Every store test runs twice: on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from modeltap.store import SqlStore


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = SqlStore.open(store_url, migrate=True)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def opened(postgres_module_database: str) -> Iterator[tuple[SqlStore, Engine]]:
    """A migrated store on the real PostgreSQL, and an engine of its own, for a module."""
    store = SqlStore.open(postgres_module_database, migrate=True)
    engine = create_engine(postgres_module_database)
    yield store, engine
    engine.dispose()
    store.close()
