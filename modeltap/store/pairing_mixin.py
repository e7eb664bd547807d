"""The part of ``SqlStore`` that pairs the request and response halves of logged calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from modeltap.schema import utc
from modeltap.store.engine import WRITE, translate_errors
from modeltap.store.tables import pending_exchanges

Half = Literal["request", "response"]


@dataclass(frozen=True, slots=True)
class LoggedHalf:
    """One CloudEvent of a logged call: its request or its response."""

    pair_id: str
    half: Half
    source: str
    model: str
    version: str
    body: bytes
    time: datetime
    received_at: datetime
    # The caller's X-Request-ID, when the logger passes it on (else the pair id is used).
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class LoggedPair:
    """A logged call; ``response_body`` is None for one whose response never came."""

    pair_id: str
    source: str
    model: str
    version: str
    request_body: bytes | None
    request_time: datetime | None
    response_body: bytes | None
    response_time: datetime | None
    received_at: datetime
    request_id: str | None = None


class PairingStore:
    """Mixed into ``SqlStore``; needs its ``_engine`` and ``_postgres``."""

    _engine: Engine
    _postgres: bool

    def pair_half(self, half: LoggedHalf) -> LoggedPair | None:
        """Keep a half; when it completes a pair, return the pair (still kept: see forget).

        One upsert that returns the row decides it, so two replicas receiving the two
        halves at the same moment cannot both miss the other.
        """
        table = pending_exchanges
        insert = (pg_insert if self._postgres else sqlite_insert)(table)
        body, when = f"{half.half}_body", f"{half.half}_time"
        statement = (
            insert.values(
                pair_id=half.pair_id,
                source=half.source,
                model=half.model,
                version=half.version,
                received_at=utc(half.received_at),
                request_id=half.request_id,
                **{body: half.body, when: utc(half.time)},
            )
            .on_conflict_do_update(
                index_elements=["pair_id"],
                set_={
                    body: insert.excluded[body],
                    when: insert.excluded[when],
                    "request_id": func.coalesce(insert.excluded.request_id, table.c.request_id),
                },
            )
            .returning(*table.c)
        )
        with translate_errors(self._engine), self._engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with connection.begin():
                row = connection.execute(statement).mappings().one()
        if row["request_body"] is None or row["response_body"] is None:
            return None
        return _pair(row)

    def forget_pair(self, pair_id: str) -> None:
        """Drop a pair whose call has been stored."""
        with translate_errors(self._engine), self._engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with connection.begin():
                connection.execute(
                    delete(pending_exchanges).where(pending_exchanges.c.pair_id == pair_id)
                )

    def stale_pending(self, before: datetime, limit: int = 1000) -> list[LoggedPair]:
        """Halves that have waited since before ``before`` for a partner (still kept)."""
        table = pending_exchanges
        statement = (
            select(table)
            .where(table.c.received_at < utc(before))
            .order_by(table.c.received_at)
            .limit(limit)
        )
        with translate_errors(self._engine), self._engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        return [_pair(row) for row in rows]


def _pair(row: Any) -> LoggedPair:
    return LoggedPair(
        pair_id=row["pair_id"],
        source=row["source"],
        model=row["model"],
        version=row["version"],
        request_body=row["request_body"],
        request_time=row["request_time"],
        response_body=row["response_body"],
        response_time=row["response_time"],
        received_at=row["received_at"],
        request_id=row["request_id"],
    )
