"""Initial schema: requests, predictions, labels, reference profiles, detector results.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modeltap.store.tables import UTCDateTime, json_type

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("upstream_latency_ms", sa.Float()),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("request_bytes", sa.BigInteger(), nullable=False),
        sa.Column("response_bytes", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.String(64)),
        sa.Column("capture_note", sa.Text()),
        sa.PrimaryKeyConstraint("event_id", "ts", name="pk_requests"),
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_index("ix_requests_model_version_ts", "requests", ["model", "version", "ts"])

    op.create_table(
        "predictions",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("label_key", sa.String(300), nullable=False),
        sa.Column("instance_id", sa.String(255)),
        sa.Column("features", json_type(), nullable=False),
        sa.Column("prediction", json_type()),
        sa.Column("score", sa.Float()),
        sa.PrimaryKeyConstraint("event_id", "row_index", "ts", name="pk_predictions"),
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_index("ix_predictions_model_version_ts", "predictions", ["model", "version", "ts"])
    op.create_index("ix_predictions_label_key", "predictions", ["label_key"])

    op.create_table(
        "labels",
        sa.Column("label_key", sa.String(300), nullable=False),
        sa.Column("request_id", sa.String(255)),
        sa.Column("row_index", sa.Integer()),
        sa.Column("instance_id", sa.String(255)),
        sa.Column("model", sa.String(128)),
        sa.Column("value", json_type()),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("label_key", name="pk_labels"),
    )
    op.create_index("ix_labels_received_at", "labels", ["received_at"])

    op.create_table(
        "reference_profiles",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("profile_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("profile", json_type(), nullable=False),
        sa.PrimaryKeyConstraint(
            "model", "version", "profile_version", name="pk_reference_profiles"
        ),
    )

    op.create_table(
        "detector_results",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("feature", sa.String(255), nullable=False),
        sa.Column("segment", sa.String(255), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("statistic", sa.Float()),
        sa.Column("threshold", sa.Float()),
        sa.Column("direction", sa.String(8)),
        sa.Column("alert", sa.Boolean(), nullable=False),
        sa.Column("reference_size", sa.BigInteger()),
        sa.Column("current_size", sa.BigInteger()),
        sa.Column("details", json_type(), nullable=False),
        sa.PrimaryKeyConstraint(
            "model",
            "version",
            "detector",
            "feature",
            "segment",
            "window_start",
            "window_end",
            name="pk_detector_results",
        ),
    )
    op.create_index("ix_detector_results_window_end", "detector_results", ["window_end"])


def downgrade() -> None:
    for table in ("detector_results", "reference_profiles", "labels", "predictions", "requests"):
        op.drop_table(table)
