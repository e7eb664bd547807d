"""Storage: the ``Store`` seam and its SQL implementation (SQLite and PostgreSQL)."""

from modeltap.store.base import REQUEST_COLUMNS, Store
from modeltap.store.sql import SqlStore

__all__ = ["REQUEST_COLUMNS", "SqlStore", "Store"]
