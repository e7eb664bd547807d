"""requests.latency_ms may be NULL, and logged calls keep the caller's request id.

requests.latency_ms NULL: a call whose latency nobody measured.

A line followed in log-tail mode need not say how long the call took, and a call whose
response a logger never sent has no latency either. Storing 0 for them dragged every
percentile down; NULL keeps them out of the latency figures and in the request counts.

On SQLite the table is rebuilt (batch mode), which copies it once; on PostgreSQL it is one
catalog change on the partitioned table.

pending_exchanges.request_id: the X-Request-ID a logger (KServe's agent with
metadataHeaders) passes on, so labels keyed on the caller's id join its logged call.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("latency_ms", existing_type=sa.Float(), nullable=True)
    op.add_column("pending_exchanges", sa.Column("request_id", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("pending_exchanges") as batch:
        batch.drop_column("request_id")
    op.execute("UPDATE requests SET latency_ms = 0 WHERE latency_ms IS NULL")
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("latency_ms", existing_type=sa.Float(), nullable=False)
