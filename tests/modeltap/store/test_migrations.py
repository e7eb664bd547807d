"""Migrations create exactly the tables the code declares, on both databases."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from modeltap.store import SqlStore
from modeltap.store.engine import make_engine
from modeltap.store.migrate import current_revision, head_revision, scripts_head, upgrade
from modeltap.store.tables import metadata
from tests.modeltap.store.factories import T0, events, write_before_0007, write_before_0008

ROOT = Path(__file__).resolve().parents[3]


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


def test_an_existing_store_keeps_its_events_through_the_index_move(store_url: str) -> None:
    """0005 swaps the event tables' (model, version, ts) index for (model, ts) under data."""
    engine = make_engine(store_url)
    upgrade(engine, "0004")
    store = SqlStore(engine)
    write_before_0007(store, events(range(30)))
    assert upgrade(engine) == ("0004", head_revision())
    for table in ("requests", "predictions"):
        names = {index["name"] for index in inspect(engine).get_indexes(table)}
        assert f"ix_{table}_model_ts" in names
        assert f"ix_{table}_model_version_ts" not in names
    rows = store.read_rows("churn", T0, T0 + timedelta(minutes=1), numerical=["age"])
    assert list(rows["feature:age"]) == [30.0 + n for n in range(30)]
    engine.dispose()


def test_an_existing_store_takes_unmeasured_latencies_after_0006(store_url: str) -> None:
    """0006 lets requests.latency_ms be NULL, keeping the rows already there."""
    from dataclasses import replace

    from modeltap.schema import EventBatch

    engine = make_engine(store_url)
    upgrade(engine, "0005")
    store = SqlStore(engine)
    write_before_0007(store, events(range(10)))
    assert upgrade(engine) == ("0005", head_revision())
    unmeasured = replace(events(range(10, 11)).requests[0], latency_ms=None)
    assert store.write(EventBatch([unmeasured])).requests_written == 1
    frame = store.read_requests("churn", T0, T0 + timedelta(minutes=1))
    assert frame["latency_ms"].isna().tolist() == [False] * 10 + [True]
    assert {index["name"] for index in inspect(engine).get_indexes("requests")} >= {
        "ix_requests_model_ts"
    }
    engine.dispose()


def test_predictions_stored_before_0007_read_back_without_class_probabilities(
    store_url: str,
) -> None:
    """0007 adds predictions.class_scores; the rows already there keep everything else."""
    from dataclasses import replace

    from modeltap.schema import EventBatch

    engine = make_engine(store_url)
    upgrade(engine, "0006")
    store = SqlStore(engine)
    write_before_0007(store, events(range(5)))
    assert upgrade(engine) == ("0006", head_revision())
    newer = events(range(5, 6))
    scored = replace(newer.predictions[0], class_scores=[0.2, 0.3, 0.5])
    store.write(EventBatch(newer.requests, [scored]))
    frame = store.read_rows(
        "churn", T0, T0 + timedelta(minutes=1), numerical=["age"], class_scores=True
    ).sort_values("ts")
    assert list(frame["feature:age"]) == [30.0 + n for n in range(6)]
    assert frame["class_scores"].isna().tolist() == [True] * 5 + [False]
    engine.dispose()


def test_predictions_stored_before_0008_read_back_beside_packed_ones(store_url: str) -> None:
    """0008 adds the packed numbers; older rows keep NULLs there and read from their JSON,
    in the same window as rows packed after the upgrade."""
    engine = make_engine(store_url)
    upgrade(engine, "0007")
    store = SqlStore(engine)
    write_before_0008(store, events(range(5)))
    assert upgrade(engine) == ("0007", head_revision())
    store.write(events(range(5, 9)))
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(layout), count(numbers) FROM predictions"))
        assert tuple(stored.one()) == (4, 4)
    frame, counts = store.read_rows_counted(
        "churn", T0, T0 + timedelta(minutes=1), numerical=["age"], expected=9
    )
    assert sorted(frame["feature:age"]) == [30.0 + n for n in range(9)]
    assert counts == {"v1": {"age": 0}}
    engine.dispose()


def test_sqlite_upgrades_itself_and_postgres_waits_for_db_upgrade(store_url: str) -> None:
    """The one rule every command and sink shares, kept in ``open_store``."""
    import pytest

    from modeltap.errors import SchemaOutOfDateError
    from modeltap.store import open_store

    if store_url.startswith("sqlite"):
        open_store(store_url).close()
        assert current_revision(make_engine(store_url)) == head_revision()
    else:
        with pytest.raises(SchemaOutOfDateError, match="monitor db upgrade"):
            open_store(store_url)
        assert current_revision(make_engine(store_url)) is None


def test_the_declared_head_is_alembics() -> None:
    """``HEAD`` spares every current open an Alembic import; it must be the scripts' head."""
    assert head_revision() == scripts_head()


def test_opening_a_current_store_does_not_load_alembic(store_url: str) -> None:
    SqlStore.open(store_url, migrate=True).close()
    code = (
        "import sys\n"
        "from modeltap.store import open_store\n"
        f"open_store({store_url!r}).close()\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "False"
