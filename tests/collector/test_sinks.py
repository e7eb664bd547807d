"""The database sinks on SQLite and the real PostgreSQL: a refused event never takes its
batch down with it, and a database that is down is not mistaken for bad data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from collector.sinks import SqlSink
from modeltap.errors import StorageError, StorageUnavailableError
from modeltap.events import CapturedEvent
from modeltap.store import SqlStore, make_engine, upgrade
from tests.modeltap.store.factories import T0, prediction, request


def event(n: int, *, row: int = 0) -> CapturedEvent:
    return CapturedEvent(request(n), (prediction(n, row=row),))


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sink.db'}"
    database: str = request.getfixturevalue("postgres_database")
    SqlStore.open(database, migrate=True).close()
    return database


async def test_the_refused_event_is_returned_and_the_rest_of_its_batch_stored(url: str) -> None:
    sink = SqlSink(url)
    # A row index past any integer column: a value no database takes, in the middle.
    events = [event(n, row=2**64 if n == 7 else 0) for n in range(20)]
    refused = await sink.write(events)
    assert [item.event.request.request_id for item in refused] == ["req-7"]
    assert "refused the data" in refused[0].reason or "cannot take" in refused[0].reason
    store = SqlStore.open(url)
    stored = store.read_requests("churn", T0, T0.replace(hour=13))
    assert sorted(stored["request_id"]) == sorted(f"req-{n}" for n in range(20) if n != 7)
    assert len(store.read_predictions("churn", T0, T0.replace(hour=13))) == 19
    # The next batch, and the same batch again (a replay), go through as usual.
    assert await sink.write([event(n) for n in range(20, 25)]) == []
    again = await sink.write([replace(e) for e in events if e.request.request_id != "req-7"])
    assert again == []
    assert len(store.read_requests("churn", T0, T0.replace(hour=13))) == 24
    store.close()
    await sink.close()


async def test_a_database_that_is_down_fails_the_whole_write(tmp_path: Path) -> None:
    sink = SqlSink("postgresql+psycopg://nobody@127.0.0.1:9/none")
    with pytest.raises(StorageUnavailableError):
        await sink.write([event(1)])
    await sink.close()


async def test_a_sqlite_database_the_child_cannot_migrate_is_a_storage_error(
    tmp_path: Path,
) -> None:
    # A database written by a newer modeltap: the migrating child fails, the sink says which
    # database and why, and the batch goes to the caller to spool, like any failed write.
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    SqlStore.open(url, migrate=True).close()
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    sink = SqlSink(url)
    with pytest.raises(StorageError, match=r"could not create the tables in .*newer.db: .*9999"):
        await sink.write([event(1)])
    await sink.close()


async def test_an_old_sqlite_database_is_upgraded_before_the_first_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade(engine, "0005")
    engine.dispose()
    sink = SqlSink(url)
    assert await sink.write([event(1)]) == []
    await sink.close()
    store = SqlStore.open(url)
    assert list(store.read_requests("churn", T0, T0.replace(hour=13))["request_id"]) == ["req-1"]
    store.close()
