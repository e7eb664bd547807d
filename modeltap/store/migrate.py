"""Schema migrations (Alembic), run programmatically by ``monitor db upgrade``.

Alembic itself (11 MiB) is imported only to migrate: opening a database that is already
current, as every sidecar start does, reads its revision with one query and compares it
with ``HEAD``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect

from modeltap.errors import SchemaOutOfDateError
from modeltap.store.engine import WRITE, redact, translate_errors

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = "modeltap.store:migrations"
# The newest migration shipped; a test checks it against Alembic's own reading of the scripts.
HEAD = "0008"


def _config() -> Config:
    from alembic.config import Config  # noqa: PLC0415 - see the module's docstring

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str:
    """The newest migration this version of modeltap ships."""
    return HEAD


def scripts_head() -> str | None:
    """The head as Alembic finds it in the migration scripts."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with translate_errors(engine), engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        found = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()
        return next(iter(found), None)


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the database to ``revision``; returns (before, after)."""
    from alembic import command  # noqa: PLC0415

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
