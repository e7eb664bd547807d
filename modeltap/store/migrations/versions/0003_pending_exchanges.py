"""Halves of calls logged as CloudEvents by other servers, waiting for their partner.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modeltap.store.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_exchanges",
        sa.Column("pair_id", sa.String(255), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("request_body", sa.LargeBinary()),
        sa.Column("request_time", UTCDateTime()),
        sa.Column("response_body", sa.LargeBinary()),
        sa.Column("response_time", UTCDateTime()),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pair_id", name="pk_pending_exchanges"),
    )
    op.create_index("ix_pending_exchanges_received_at", "pending_exchanges", ["received_at"])


def downgrade() -> None:
    op.drop_table("pending_exchanges")
