"""The detectors' bookkeeping: run records, computed windows, and one owner per job.

Replicas of ``monitor detect`` share work through PostgreSQL session advisory locks, one
per (model, detector): whoever holds it runs that job now, the others skip it this time.
The holder reads what is already computed *after* taking the lock and records what it
computed *before* releasing it, so no window is ever computed twice. SQLite is a single
process's embedded database, so there the lock is always granted.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, case, func, select, text, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from modeltap.schema import DetectorRun, RunHealth, WindowRecord, utc
from modeltap.store.tables import detector_runs, detector_windows

# First key of every detector lock ("mt" for modeltap); the second is a hash of the job.
_LOCK_SPACE = 0x6D74


def lock_key(model: str, detector: str) -> int:
    """A stable signed 32-bit key for the job (a collision only serialises two jobs)."""
    digest = zlib.crc32(f"{model}\x00{detector}".encode())
    return digest - 2**32 if digest >= 2**31 else digest


@contextmanager
def advisory_lock(engine: Engine, model: str, detector: str) -> Iterator[bool]:
    """Try to own (model, detector); yields whether this process got it (never waits)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = {"space": _LOCK_SPACE, "key": lock_key(model, detector)}
    # A session lock on its own autocommit connection: it is held across the job's many
    # transactions, and released when the job ends or, if the process dies, with the session.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        owned = bool(
            connection.execute(text("SELECT pg_try_advisory_lock(:space, :key)"), key).scalar()
        )
        try:
            yield owned
        finally:
            if owned:
                connection.execute(text("SELECT pg_advisory_unlock(:space, :key)"), key)


def insert_run(connection: Connection, run: DetectorRun) -> None:
    connection.execute(
        detector_runs.insert().values(
            model=run.model,
            detector=run.detector,
            started_at=utc(run.started_at),
            as_of=utc(run.as_of),
            duration_ms=run.duration_ms,
            status=run.status,
            windows=run.windows,
            results=run.results,
            owner=run.owner,
            error=run.error,
        )
    )


def last_ok_as_of(connection: Connection, model: str, detector: str) -> datetime | None:
    """The ``now`` of the latest successful run of the job, or None."""
    table = detector_runs
    value: datetime | None = connection.execute(
        select(func.max(table.c.as_of)).where(
            table.c.model == model, table.c.detector == detector, table.c.status == "ok"
        )
    ).scalar()
    return value


def upsert_windows(connection: Connection, postgres: bool, records: Sequence[WindowRecord]) -> None:
    """Record computed windows; a window computed again counts one more computation."""
    if not records:
        return
    rows = [
        {
            "model": r.model,
            "detector": r.detector,
            "window_start": utc(r.window_start),
            "window_end": utc(r.window_end),
            "computed_at": utc(r.computed_at),
            "requests": r.requests,
            "predictions": r.predictions,
            "partial": r.partial,
            "computations": r.computations,
            "owner": r.owner,
        }
        for r in records
    ]
    statement: Any = (pg_insert if postgres else sqlite_insert)(detector_windows)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["model", "detector", "window_start", "window_end"],
        set_={
            "computed_at": excluded.computed_at,
            "requests": excluded.requests,
            "predictions": excluded.predictions,
            "partial": excluded.partial,
            "owner": excluded.owner,
            "computations": detector_windows.c.computations + 1,
        },
    )
    connection.execute(statement, rows)


def window_records(
    connection: Connection, model: str, detector: str, since: datetime
) -> list[WindowRecord]:
    """Windows of the job that end after ``since``, oldest first."""
    table = detector_windows
    rows = connection.execute(
        select(table)
        .where(table.c.model == model, table.c.detector == detector, table.c.window_end > since)
        .order_by(table.c.window_start)
    ).mappings()
    return [WindowRecord(**row) for row in rows]


def run_health(connection: Connection, model: str | None = None) -> list[RunHealth]:
    """Per (model, detector): the latest run, how many ran and failed, failures in a row."""
    table = detector_runs
    last_ok = func.max(case((table.c.status == "ok", table.c.started_at)))
    totals = select(
        table.c.model,
        table.c.detector,
        func.count().label("runs"),
        func.sum(case((table.c.status == "error", 1), else_=0)).label("failures"),
        last_ok.label("last_ok"),
    ).group_by(table.c.model, table.c.detector)
    if model is not None:
        totals = totals.where(table.c.model == model)
    rank = func.row_number().over(
        partition_by=[table.c.model, table.c.detector],
        order_by=[table.c.started_at.desc(), table.c.run_id.desc()],
    )
    ranked = select(table, rank.label("rank"))
    if model is not None:
        ranked = ranked.where(table.c.model == model)
    latest = ranked.subquery()
    last = {
        (row["model"], row["detector"]): row
        for row in connection.execute(select(latest).where(latest.c.rank == 1)).mappings()
    }
    health = []
    for row in connection.execute(totals).mappings():
        recent = last[(row["model"], row["detector"])]
        in_a_row = connection.execute(
            select(func.count()).where(
                table.c.model == row["model"],
                table.c.detector == row["detector"],
                table.c.status == "error",
                table.c.started_at > row["last_ok"] if row["last_ok"] is not None else true(),
            )
        ).scalar_one()
        health.append(
            RunHealth(
                model=row["model"],
                detector=row["detector"],
                last_started_at=recent["started_at"],
                last_as_of=recent["as_of"],
                last_status=recent["status"],
                last_duration_ms=recent["duration_ms"],
                last_error=recent["error"],
                runs=int(row["runs"]),
                failures=int(row["failures"] or 0),
                consecutive_failures=int(in_a_row),
            )
        )
    return sorted(health, key=lambda item: (item.model, item.detector))


def runs_since(connection: Connection, since: datetime) -> list[DetectorRun]:
    """Run records started after ``since``, oldest first (an index range on started_at)."""
    table = detector_runs
    rows = connection.execute(
        select(
            table.c.model,
            table.c.detector,
            table.c.started_at,
            table.c.duration_ms,
            table.c.status,
            table.c.as_of,
            table.c.windows,
            table.c.results,
            table.c.owner,
        )
        .where(table.c.started_at > since)
        .order_by(table.c.started_at, table.c.run_id)
    ).mappings()
    return [DetectorRun(**row) for row in rows]
