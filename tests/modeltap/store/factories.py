"""Small builders for records in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, Table

from modeltap.schema import EventBatch, LabelRecord, PredictionRecord, RequestRecord
from modeltap.store import SqlStore, sql_store
from modeltap.store.tables import predictions

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def request(
    n: int,
    *,
    ts: datetime | None = None,
    model: str = "churn",
    version: str = "v1",
    status: int = 200,
) -> RequestRecord:
    return RequestRecord(
        event_id=f"evt-{n}",
        request_id=f"req-{n}",
        model=model,
        version=version,
        ts=ts or T0 + timedelta(seconds=n),
        latency_ms=10.0 + n,
        status_code=status,
        upstream_latency_ms=9.0 + n,
        request_bytes=100,
        response_bytes=20,
    )


def prediction(
    n: int,
    row: int = 0,
    *,
    ts: datetime | None = None,
    features: dict[str, Any] | None = None,
    model: str = "churn",
    version: str = "v1",
    instance_id: str | None = None,
) -> PredictionRecord:
    return PredictionRecord(
        event_id=f"evt-{n}",
        row_index=row,
        request_id=f"req-{n}",
        model=model,
        version=version,
        ts=ts or T0 + timedelta(seconds=n),
        features=features or {"age": 30 + n, "plan": "pro"},
        prediction=n % 2,
        score=0.25,
        instance_id=instance_id,
    )


def label(n: int, value: Any, *, row: int = 0, at: datetime | None = None) -> LabelRecord:
    moment = at or T0 + timedelta(hours=3)
    return LabelRecord(
        value=value,
        ts=moment,
        received_at=moment,
        request_id=f"req-{n}",
        row_index=row,
        model="churn",
    )


def events(numbers: range, *, rows: int = 1, **kwargs: Any) -> EventBatch:
    return EventBatch(
        requests=[request(n, **kwargs) for n in numbers],
        predictions=[prediction(n, row, **kwargs) for n in numbers for row in range(rows)],
    )


def write_before_0007(store: SqlStore, batch: EventBatch) -> None:
    """Write ``batch`` as a modeltap from before migration 0007 did (predictions without
    class_scores or packed numbers), into a database still at an older revision."""
    _write_without(store, batch, ("class_scores", "layout", "numbers"))


def write_before_0008(store: SqlStore, batch: EventBatch) -> None:
    """Write ``batch`` as a modeltap from before migration 0008 did (predictions without
    packed numbers)."""
    _write_without(store, batch, ("layout", "numbers"))


def _write_without(store: SqlStore, batch: EventBatch, newer: tuple[str, ...]) -> None:
    names = [c.name for c in predictions.columns]
    assert tuple(names[-len(newer) :]) == newer, "the newest columns come last"
    old = Table(
        "predictions",
        MetaData(),
        *[Column(c.name, c.type) for c in predictions.columns][: -len(newer)],
    )
    newest = sql_store._prediction_row
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sql_store, "predictions", old)
        patch.setattr(sql_store, "_prediction_row", lambda record: newest(record)[: -len(newer)])
        store.write(batch)
