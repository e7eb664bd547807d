"""The record types that flow from capture to storage to detectors.

Records are frozen slotted dataclasses: cheap to build on the sidecar's request path and
safe to hand between threads. Times are timezone-aware UTC; ``utc()`` normalises them.
The stored form of each record is a table in ``modeltap.store.tables``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

# A value that survives a JSON round trip (str, number, bool, None, lists and dicts of them).
JsonValue = Any
# A row's class probabilities: in the model's class order, or keyed by class.
ClassScores = Sequence[float] | Mapping[str, float]

Direction = Literal["lower", "higher"]
"""Which way a score moves when things get worse: p-values drift *lower*, distances *higher*."""

ResultStatus = Literal["ok", "insufficient_data", "error"]

RunStatus = Literal["ok", "error"]

FAMILIES = ("operations", "quality", "drift", "performance", "ab", "estimation", "multivariate")
"""The detector families: each runs as its own scheduled job per model (``DetectorRun.detector``),
and the exporter reports each job's health."""

DRIFT_TESTS = ("ks", "psi", "chisquare", "z", "jensenshannon", "wasserstein")
"""The built-in drift tests. Each stores a result per feature as evidence; the configured
method's verdict is the feature's ``feature_drift`` (or ``prediction_drift``) result, which is
what alerts and gates count."""


# The longest ids (request, instance) and names (model, version) the tables hold.
MAX_ID = 255
MAX_NAME = 128
# Event times modeltap stores. Any real event falls inside; the bounds keep a day's
# partition (which ends the day after) and every engine's timestamp type in range.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)

# What no text column can hold: control characters (PostgreSQL text refuses NUL) and lone
# surrogates (what undecodable header bytes become; no UTF-8 encoder accepts them).
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def bounded(value: str, limit: int) -> str:
    """``value`` if the store can keep it as it is, else a stable stand-in for it.

    A value longer than ``limit``, or holding control characters or undecodable bytes,
    becomes its printable start, ``~`` and 16 hex digits of its SHA-256. The same value
    always gives the same stand-in, so a label that names an over-long request id still
    finds its prediction, and the function is idempotent.

    >>> bounded("req-1", 255)
    'req-1'
    >>> bounded("a" * 300, 20)
    'aaa~9835fa6bf4e20a9b'
    >>> bounded("a\\x00b", 20)
    'a?b~59b271ae1bbcb1d3'
    """
    if len(value) <= limit and not _UNSTORABLE.search(value):
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{_UNSTORABLE.sub('?', value)[: max(limit - 17, 0)]}~{digest}"


def printable(text: str) -> str:
    """``text`` with what no text column holds (control characters, undecodable bytes) as ?.

    >>> printable("line\\none")
    'line?one'
    """
    return _UNSTORABLE.sub("?", text)


def in_range(moment: datetime) -> bool:
    """Whether an event time can be stored (between 1970 and the year 9999)."""
    return EARLIEST <= moment < LATEST


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; naive datetimes are refused rather than guessed."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: give a timezone (UTC expected)")
    return moment.astimezone(UTC)


def label_key(request_id: str | None, row_index: int | None, instance_id: str | None) -> str:
    """The key a prediction and its late label share.

    An instance id (when the model's config names one) wins; otherwise the request id and
    the row's index within the batch request.

    >>> label_key("req-1", 2, None)
    'r:req-1:2'
    >>> label_key("req-1", 2, "cust-9")
    'i:cust-9'
    """
    if instance_id is not None:
        return f"i:{instance_id}"
    if request_id is None:
        raise ValueError("a label needs a request id or an instance id")
    return f"r:{request_id}:{row_index or 0}"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP call through the sidecar (or one logged call), identified by ``event_id``."""

    event_id: str
    request_id: str
    model: str
    version: str
    ts: datetime
    # None when nobody measured it (a log line without latency, a call never answered).
    latency_ms: float | None
    status_code: int
    upstream_latency_ms: float | None = None
    request_bytes: int = 0
    response_bytes: int = 0
    # Why the upstream call failed (upstream_unreachable, upstream_timeout), else None.
    error: str | None = None
    # Why no prediction rows were captured (unparsed: ..., sampled_out, too_large), else None.
    capture_note: str | None = None


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One instance of a (possibly batched) request: its features and the model's answer."""

    event_id: str
    row_index: int
    request_id: str
    model: str
    version: str
    ts: datetime
    features: Mapping[str, JsonValue]
    prediction: JsonValue
    score: float | None = None
    instance_id: str | None = None
    # A multiclass model's probabilities as it answered them: a list in its classes' order,
    # or an object keyed by class (the model's configured classes read either).
    class_scores: ClassScores | None = None

    @property
    def label_key(self) -> str:
        return label_key(self.request_id, self.row_index, self.instance_id)


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """Ground truth for one prediction, arriving late; upserted on its label key."""

    value: JsonValue
    ts: datetime
    received_at: datetime
    request_id: str | None = None
    row_index: int | None = None
    instance_id: str | None = None
    model: str | None = None

    @property
    def label_key(self) -> str:
        return label_key(self.request_id, self.row_index, self.instance_id)


@dataclass(frozen=True, slots=True)
class ReferenceProfile:
    """A compact fitted reference for one model (and version), stored versioned."""

    model: str
    version: str
    profile_version: int
    created_at: datetime
    source: str
    profile: Mapping[str, JsonValue]


@dataclass(frozen=True, slots=True)
class DetectorResult:
    """One detector's verdict on one window; upserted on (model .. window_end)."""

    model: str
    version: str
    detector: str
    window_start: datetime
    window_end: datetime
    computed_at: datetime
    status: ResultStatus
    score: float | None
    threshold: float | None
    direction: Direction | None
    alert: bool
    feature: str = ""
    segment: str = ""
    statistic: float | None = None
    reference_size: int | None = None
    current_size: int | None = None
    details: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LatestValue:
    """The newest measured value of one result series: what the exporter publishes."""

    model: str
    version: str
    detector: str
    feature: str
    window_end: datetime
    score: float
    alert: bool
    # From the details: the deciding test (drift) and the baseline version (A/B), if any.
    test: str = ""
    baseline: str = ""
    # The threshold the value was judged by (a learned band's bound, or the configured one).
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class DetectorRun:
    """One run of one detector job for one model: when, how long, and how it ended."""

    model: str
    detector: str
    started_at: datetime
    duration_ms: float
    status: RunStatus
    # The moment the run computed windows for (its ``now``); labels after it are new next time.
    as_of: datetime
    windows: int = 0
    results: int = 0
    owner: str = ""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """A window a detector computed, with the event counts it saw (to notice late events)."""

    model: str
    detector: str
    window_start: datetime
    window_end: datetime
    computed_at: datetime
    requests: int
    predictions: int
    partial: bool = False
    computations: int = 1
    owner: str = ""


@dataclass(frozen=True, slots=True)
class RunHealth:
    """Per (model, detector): the last run and how many runs failed (for exporters)."""

    model: str
    detector: str
    last_started_at: datetime
    last_as_of: datetime
    last_status: RunStatus
    last_duration_ms: float
    last_error: str | None
    runs: int
    failures: int
    consecutive_failures: int


@dataclass(frozen=True, slots=True)
class EventBatch:
    """What one write carries, committed in one transaction."""

    requests: Sequence[RequestRecord] = ()
    predictions: Sequence[PredictionRecord] = ()
    labels: Sequence[LabelRecord] = ()

    def __len__(self) -> int:
        return len(self.requests) + len(self.predictions) + len(self.labels)


@dataclass(frozen=True, slots=True)
class WriteSummary:
    """What a write did; duplicates are events already stored (redeliveries)."""

    requests_written: int = 0
    requests_duplicate: int = 0
    predictions_written: int = 0
    predictions_duplicate: int = 0
    labels_written: int = 0
    labels_updated: int = 0
    # Labels whose key matches no stored prediction when written (a later one still joins).
    labels_unmatched: int = 0

    def __add__(self, other: WriteSummary) -> WriteSummary:
        return WriteSummary(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True, slots=True)
class PurgeSummary:
    """Rows removed by a retention purge, per table."""

    requests: int
    predictions: int
    labels: int
    results: int
    partitions_dropped: int = 0
    runs: int = 0
    windows: int = 0
