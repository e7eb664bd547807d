"""The store seam: what capture, collection, detection and export need from a database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from modeltap.schema import (
    DetectorResult,
    DetectorRun,
    EventBatch,
    JsonValue,
    LatestValue,
    PurgeSummary,
    ReferenceProfile,
    RunHealth,
    WindowRecord,
    WriteSummary,
)

if TYPE_CHECKING:
    import pandas as pd

    from modeltap.store.pairing_mixin import LoggedHalf, LoggedPair

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

    def results_between(
        self, model: str, start: datetime, end: datetime, *, version: str | None = None
    ) -> list[DetectorResult]:
        """Every result of windows inside ``[start, end]``, oldest window first."""
        ...

    def purge(self, before: datetime, *, dry_run: bool = False) -> PurgeSummary:
        """Delete events, labels, results and run records older than ``before`` (retention);
        with ``dry_run``, only count what that would delete."""
        ...

    # -- what the detectors read and record -----------------------------------------------

    def read_rows(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        numerical: Sequence[str] = (),
        categorical: Sequence[str] = (),
        with_labels: bool = False,
        class_scores: bool = False,
        expected: int = 0,
    ) -> pd.DataFrame:
        """Prediction rows with typed features (``feature:NAME`` columns), times as epoch seconds.

        Columns: version, ts, prediction (JSON text), score, the features, with
        ``with_labels`` label (JSON text) and label_received_at, and with ``class_scores``
        the class probabilities (JSON text). Numerical features are NaN where the value is
        not a number; categorical ones None where not a scalar. ``expected`` is about how
        many rows the range holds when the caller knows (its event count; 0 if not): a
        store may read a small range in fewer, larger pieces.
        """
        ...

    def read_rows_counted(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        numerical: Sequence[str] = (),
        categorical: Sequence[str] = (),
        with_labels: bool = False,
        class_scores: bool = False,
        expected: int = 0,
    ) -> tuple[pd.DataFrame, dict[str, dict[str, int]]]:
        """``read_rows`` and the ``type_violations`` of the same features, in one read."""
        ...

    def read_serving(self, model: str, start: datetime, end: datetime) -> pd.DataFrame:
        """One row per request: version, latency_ms, status_code, upstream_failed."""
        ...

    def type_violations(
        self, model: str, start: datetime, end: datetime, features: Mapping[str, str]
    ) -> dict[str, dict[str, int]]:
        """Per version and feature (name -> kind), how many values had the wrong JSON type."""
        ...

    def event_counts(
        self, model: str, start: datetime, end: datetime, window: timedelta
    ) -> dict[datetime, tuple[int, int]]:
        """(requests, prediction rows) per tumbling window start in the range."""
        ...

    def labelled_windows(
        self,
        model: str,
        *,
        since: datetime,
        until: datetime,
        earliest: datetime,
        window: timedelta,
    ) -> list[datetime]:
        """Starts of windows (from ``earliest``) with predictions labelled in (since, until]."""
        ...

    def detector_lock(self, model: str, detector: str) -> AbstractContextManager[bool]:
        """Try to own the (model, detector) job across replicas; yields whether this one does."""
        ...

    def save_window(
        self, results: Sequence[DetectorResult], records: Sequence[WindowRecord]
    ) -> None:
        """Upsert a window's results and record that it was computed (one record per
        detector whose results these are), together."""
        ...

    def window_records(self, model: str, detector: str, since: datetime) -> list[WindowRecord]:
        """The job's computed windows that end after ``since``."""
        ...

    def record_run(self, run: DetectorRun) -> None:
        """Append a run record (ok or error, with its duration)."""
        ...

    def last_ok_as_of(self, model: str, detector: str) -> datetime | None:
        """The ``now`` of the job's latest successful run."""
        ...

    def run_health(self, model: str | None = None) -> list[RunHealth]:
        """Per (model, detector): last run, runs, failures and failures in a row."""
        ...

    def pair_half(self, half: LoggedHalf) -> LoggedPair | None:
        """Keep half of a call logged elsewhere; return the pair once both halves are in."""
        ...

    def forget_pair(self, pair_id: str) -> None:
        """Drop a kept pair once its call is stored."""
        ...

    def stale_pending(self, before: datetime, limit: int = 1000) -> list[LoggedPair]:
        """Halves still waiting for a partner since before ``before`` (not removed)."""
        ...

    # -- what the exporter reads at scrape time ---------------------------------------------

    def latest_values(self, since: datetime) -> list[LatestValue]:
        """Per (model, version, detector, feature), the newest unsegmented value since ``since``."""
        ...

    def runs_since(self, since: datetime) -> list[DetectorRun]:
        """Run records started after ``since``, oldest first."""
        ...

    def ping(self) -> None:
        """Raise StorageUnavailableError unless the database answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
