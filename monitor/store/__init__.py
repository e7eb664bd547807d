"""Storage: the ``Store`` seam and its SQL implementation (SQLite and PostgreSQL)."""

from monitor.store.base import REQUEST_COLUMNS, Store
from monitor.store.sql import SqlStore

__all__ = ["REQUEST_COLUMNS", "SqlStore", "Store"]
