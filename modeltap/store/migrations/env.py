"""Alembic environment: runs migrations on the connection ``modeltap.store.migrate`` hands in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from modeltap.store.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through `monitor db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds tables where needed.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
