"""Detector bookkeeping: a row per detector run, and per window computed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modeltap.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "detector_runs",
        sa.Column(
            "run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("run_id", name="pk_detector_runs"),
    )
    op.create_index(
        "ix_detector_runs_model_detector_started_at",
        "detector_runs",
        ["model", "detector", "started_at"],
    )

    op.create_table(
        "detector_windows",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("computations", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint(
            "model", "detector", "window_start", "window_end", name="pk_detector_windows"
        ),
    )
    op.create_index("ix_detector_windows_window_end", "detector_windows", ["window_end"])


def downgrade() -> None:
    op.drop_table("detector_windows")
    op.drop_table("detector_runs")
