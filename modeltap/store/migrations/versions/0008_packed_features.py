"""predictions.layout and predictions.numbers: the features packed as doubles.

The detectors read a window's numbers from these instead of typing them out of the jsonb
(``modeltap.store.packing``). Both nullable, without defaults: one catalog change each on
PostgreSQL's partitioned table. Rows already stored keep NULLs and are read from their JSON
as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("predictions", sa.Column("layout", sa.BigInteger()))
    op.add_column("predictions", sa.Column("numbers", sa.LargeBinary()))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("numbers")
        batch.drop_column("layout")
