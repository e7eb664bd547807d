"""SQLAlchemy tables: the stored form of the records in ``modeltap.schema``.

One set of tables serves SQLite (embedded default) and PostgreSQL. On PostgreSQL the two
high-volume tables, ``requests`` and ``predictions``, are range-partitioned by day on
``ts`` so retention drops whole partitions; that is why ``ts`` is part of their primary
keys (PostgreSQL requires the partition key in every unique constraint). Redeliveries of an
event carry the same ``ts``, so (event_id, ts) is as idempotent as event_id alone.

The Alembic migrations under ``modeltap/store/migrations`` create exactly these tables; a test
compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

PARTITIONED = ("requests", "predictions")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every dialect.

    SQLite has no timezone type: values are stored as naive UTC text in a fixed-width
    format, so text order is time order and range queries stay correct.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; modeltap stores UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_type() -> Any:
    """JSON on SQLite, JSONB on PostgreSQL (indexable, compact, compared by value)."""
    return JSON().with_variant(JSONB(), "postgresql")


requests = Table(
    "requests",
    metadata,
    Column("event_id", String(64), nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
    Column("request_id", String(255), nullable=False),
    Column("model", String(128), nullable=False),
    Column("version", String(128), nullable=False),
    Column("latency_ms", Float),  # NULL: not measured (log-tail lines, unanswered calls)
    Column("upstream_latency_ms", Float),
    Column("status_code", SmallInteger, nullable=False),
    Column("request_bytes", BigInteger, nullable=False),
    Column("response_bytes", BigInteger, nullable=False),
    Column("error", String(64)),
    Column("capture_note", Text),
    PrimaryKeyConstraint("event_id", "ts"),
    Index(None, "model", "ts"),
    postgresql_partition_by="RANGE (ts)",
)

predictions = Table(
    "predictions",
    metadata,
    Column("event_id", String(64), nullable=False),
    Column("row_index", Integer, nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
    Column("request_id", String(255), nullable=False),
    Column("model", String(128), nullable=False),
    Column("version", String(128), nullable=False),
    Column("label_key", String(300), nullable=False),
    Column("instance_id", String(255)),
    Column("features", json_type(), nullable=False),
    Column("prediction", json_type()),
    Column("score", Float),
    # A multiclass model's class probabilities as it answered them (a list or an object).
    Column("class_scores", json_type()),
    # The features as doubles, a value per key, and which keys (``modeltap.store.packing``);
    # NULL on rows written before migration 0008.
    Column("layout", BigInteger),
    Column("numbers", LargeBinary),
    PrimaryKeyConstraint("event_id", "row_index", "ts"),
    Index(None, "model", "ts"),
    Index(None, "label_key"),
    postgresql_partition_by="RANGE (ts)",
)

labels = Table(
    "labels",
    metadata,
    Column("label_key", String(300), nullable=False),
    Column("request_id", String(255)),
    Column("row_index", Integer),
    Column("instance_id", String(255)),
    Column("model", String(128)),
    Column("value", json_type()),
    Column("ts", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("label_key"),
    Index(None, "received_at"),
)

reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("model", String(128), nullable=False),
    Column("version", String(128), nullable=False),
    Column("profile_version", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("source", Text, nullable=False),
    Column("profile", json_type(), nullable=False),
    PrimaryKeyConstraint("model", "version", "profile_version"),
)

detector_results = Table(
    "detector_results",
    metadata,
    Column("model", String(128), nullable=False),
    Column("version", String(128), nullable=False),
    Column("detector", String(64), nullable=False),
    Column("feature", String(255), nullable=False),
    Column("segment", String(255), nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("window_end", UTCDateTime(), nullable=False),
    Column("computed_at", UTCDateTime(), nullable=False),
    Column("status", String(32), nullable=False),
    Column("score", Float),
    Column("statistic", Float),
    Column("threshold", Float),
    Column("direction", String(8)),
    Column("alert", Boolean, nullable=False),
    Column("reference_size", BigInteger),
    Column("current_size", BigInteger),
    Column("details", json_type(), nullable=False),
    PrimaryKeyConstraint(
        "model", "version", "detector", "feature", "segment", "window_start", "window_end"
    ),
    Index(None, "window_end"),
)


# The detectors' bookkeeping (migration 0002): every run, and every window computed.
detector_runs = Table(
    "detector_runs",
    metadata,
    # BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY autoincrements.
    Column("run_id", BigInteger().with_variant(Integer(), "sqlite"), autoincrement=True),
    Column("model", String(128), nullable=False),
    Column("detector", String(64), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("as_of", UTCDateTime(), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("windows", Integer, nullable=False),
    Column("results", Integer, nullable=False),
    Column("owner", String(255), nullable=False),
    Column("error", Text),
    PrimaryKeyConstraint("run_id"),
    Index(None, "model", "detector", "started_at"),
    # The exporter's scrape: every job's runs since the lookback (migration 0004).
    Index(None, "started_at"),
)

detector_windows = Table(
    "detector_windows",
    metadata,
    Column("model", String(128), nullable=False),
    Column("detector", String(64), nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("window_end", UTCDateTime(), nullable=False),
    Column("computed_at", UTCDateTime(), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("predictions", BigInteger, nullable=False),
    Column("partial", Boolean, nullable=False),
    Column("computations", Integer, nullable=False),
    Column("owner", String(255), nullable=False),
    PrimaryKeyConstraint("model", "detector", "window_start", "window_end"),
    Index(None, "window_end"),
)

# Halves of calls logged by other servers (KServe's and MLServer's CloudEvents loggers send
# the request and the response separately): kept here until the other half arrives, so
# any `monitor serve` replica can receive either.
pending_exchanges = Table(
    "pending_exchanges",
    metadata,
    Column("pair_id", String(255), nullable=False),
    Column("source", String(16), nullable=False),
    Column("model", String(128), nullable=False),
    Column("version", String(128), nullable=False),
    Column("request_body", LargeBinary),
    Column("request_time", UTCDateTime()),
    Column("response_body", LargeBinary),
    Column("response_time", UTCDateTime()),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("request_id", String(255)),  # the caller's X-Request-ID, when the logger sends it
    PrimaryKeyConstraint("pair_id"),
    Index(None, "received_at"),
)
