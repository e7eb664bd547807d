"""Detector tests that touch a store run on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from tests.modeltap.store.conftest import store, store_url

__all__ = ["store", "store_url"]
