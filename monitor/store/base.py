"""The store seam: what capture, collection, detection and export need from a database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from monitor.schema import (
    DetectorResult,
    EventBatch,
    JsonValue,
    PurgeSummary,
    ReferenceProfile,
    WriteSummary,
)

if TYPE_CHECKING:
    import pandas as pd

REQUEST_COLUMNS = (
    "event_id",
    "ts",
    "request_id",
    "model",
    "version",
    "latency_ms",
    "upstream_latency_ms",
    "status_code",
    "request_bytes",
    "response_bytes",
    "error",
    "capture_note",
)


class Store(Protocol):
    """Durable storage for events, labels, reference profiles and detector results.

    Writes are idempotent: an event already stored (same event id) is counted as a
    duplicate and left alone, so redelivery never double-counts. Reads take half-open
    time ranges ``[start, end)`` in UTC.
    """

    def write(self, batch: EventBatch) -> WriteSummary:
        """Store requests, predictions and labels in one transaction."""
        ...

    def read_requests(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        version: str | None = None,
        columns: Sequence[str] = REQUEST_COLUMNS,
    ) -> pd.DataFrame:
        """Requests of ``model`` (and ``version``) with ``start <= ts < end``, ordered by ts."""
        ...

    def read_predictions(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        version: str | None = None,
        features: Sequence[str] | None = None,
        with_labels: bool = False,
    ) -> pd.DataFrame:
        """Prediction rows in the range; ``features`` projects those keys out as columns."""
        ...

    def versions(self, model: str, start: datetime, end: datetime) -> list[str]:
        """The versions of ``model`` that served requests in the range."""
        ...

    def put_reference(
        self,
        model: str,
        version: str,
        profile: Mapping[str, JsonValue],
        *,
        source: str,
        created_at: datetime,
    ) -> ReferenceProfile:
        """Store a new profile version for (model, version) and return it."""
        ...

    def get_reference(self, model: str, version: str = "") -> ReferenceProfile | None:
        """The newest profile for (model, version), or None."""
        ...

    def upsert_results(self, results: Sequence[DetectorResult]) -> int:
        """Insert or replace results on their window key; returns how many were written."""
        ...

    def latest_results(self, model: str | None = None) -> list[DetectorResult]:
        """Per (model, version, detector, feature, segment), the result of the newest window."""
        ...

    def purge(self, before: datetime) -> PurgeSummary:
        """Delete events, labels and results older than ``before`` (retention)."""
        ...

    def ping(self) -> None:
        """Raise StorageUnavailableError unless the database answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
