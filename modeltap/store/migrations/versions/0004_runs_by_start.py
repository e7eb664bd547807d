"""An index on detector_runs.started_at: the exporter reads every job's recent runs.

The (model, detector, started_at) index serves one job's history; a scrape asks for all
jobs' runs since the lookback, which without this index scans the whole runs table and
grows with uptime.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_detector_runs_started_at", "detector_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_detector_runs_started_at", table_name="detector_runs")
