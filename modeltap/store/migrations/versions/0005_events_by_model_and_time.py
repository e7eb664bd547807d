"""Event tables indexed on (model, ts) instead of (model, version, ts).

Every detector read asks for one model's events in a time window, across its versions.
With version between model and ts in the index, the time range could not narrow the
scan: SQLite walked every event the model ever had and PostgreSQL every event of the
model in the day's partition, so a window's read grew with the history kept. A version,
when asked for, is a filter on the window's few rows.

On PostgreSQL the index is built on every existing partition during the upgrade, which
holds a lock on the event tables while it runs: upgrade when writes can wait (the sidecar
spools meanwhile; `monitor collect` waits, and its redelivery is harmless).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLES = ("requests", "predictions")


def upgrade() -> None:
    for table in _TABLES:
        op.create_index(f"ix_{table}_model_ts", table, ["model", "ts"])
        op.drop_index(f"ix_{table}_model_version_ts", table_name=table)


def downgrade() -> None:
    for table in _TABLES:
        op.create_index(f"ix_{table}_model_version_ts", table, ["model", "version", "ts"])
        op.drop_index(f"ix_{table}_model_ts", table_name=table)
