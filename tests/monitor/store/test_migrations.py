"""Migrations create exactly the tables the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from monitor.store.engine import make_engine
from monitor.store.migrate import current_revision, head_revision, upgrade
from monitor.store.tables import metadata


def test_upgrade_reaches_head_and_matches_the_declared_tables(store_url: str) -> None:
    engine = make_engine(store_url)
    assert current_revision(engine) is None
    before, after = upgrade(engine)
    assert (before, after) == (None, head_revision())
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
    engine.dispose()


def test_upgrade_is_idempotent(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine)
    assert upgrade(engine) == (head_revision(), head_revision())
    tables = set(inspect(engine).get_table_names())
    assert {"requests", "predictions", "labels", "reference_profiles", "detector_results"} <= tables
    engine.dispose()
