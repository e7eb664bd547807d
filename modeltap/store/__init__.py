"""Storage: the ``Store`` seam and its SQL implementation (SQLite and PostgreSQL).

Callers use this face; what lies behind it:

- ``protocol``: ``Store``, what capture, collection, detection and export need from a database;
- ``sql_store``: ``SqlStore``, writes, reads, references, results, retention, composed with
  ``detector_mixin`` (typed reads, run records, job ownership) and ``pairing_mixin`` (the
  two halves of logged calls);
- ``queries/``: the SQL those send, per database; ``postgres``/``sqlite``: each engine's fast
  paths; ``tables``: the schema; ``engine``: connections and error translation;
  ``migrate`` and ``migrations/``: Alembic.
"""

from modeltap.store.engine import make_engine, redact
from modeltap.store.migrate import current_revision, head_revision, upgrade
from modeltap.store.pairing_mixin import Half, LoggedHalf, LoggedPair
from modeltap.store.protocol import REQUEST_COLUMNS, Store
from modeltap.store.queries.detectors import FEATURE_PREFIX, concat_frames
from modeltap.store.sql_store import SqlStore, open_store

__all__ = [
    "FEATURE_PREFIX",
    "REQUEST_COLUMNS",
    "Half",
    "LoggedHalf",
    "LoggedPair",
    "SqlStore",
    "Store",
    "concat_frames",
    "current_revision",
    "head_revision",
    "make_engine",
    "open_store",
    "redact",
    "upgrade",
]
