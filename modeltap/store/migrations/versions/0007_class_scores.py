"""predictions.class_scores: a multiclass model's class probabilities, as it answered them.

Multiclass performance estimation (CBPE) needs every class's probability per row, where a
binary model's single score fits the score column. Nullable and without a default, so on
PostgreSQL it is one catalog change on the partitioned table, and on SQLite one ALTER.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modeltap.store.tables import json_type

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("predictions", sa.Column("class_scores", json_type()))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("class_scores")
