"""Schema migrations (Alembic), run programmatically by ``monitor db upgrade``."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from modeltap.errors import SchemaOutOfDateError
from modeltap.store.engine import WRITE, redact, translate_errors

SCRIPT_LOCATION = "modeltap.store:migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str:
    """The newest migration this version of modeltap ships."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations found in modeltap/store/migrations")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with translate_errors(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the database to ``revision``; returns (before, after)."""
    before = current_revision(engine)
    config = _config()
    with translate_errors(engine), engine.connect() as connection:
        connection.execution_options(**{WRITE: True})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
    return before, current_revision(engine) or "base"


def require_current(engine: Engine) -> None:
    """Raise SchemaOutOfDateError unless the database is at the head revision."""
    current = current_revision(engine)
    if current != head_revision():
        state = "is empty" if current is None else f"is at revision {current}"
        raise SchemaOutOfDateError(
            f"the database {redact(str(engine.url))} {state}, this modeltap needs "
            f"{head_revision()}; run `monitor db upgrade` first"
        )
