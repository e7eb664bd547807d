"""``monitor db``: schema migrations."""

from __future__ import annotations

import click

from monitor.commands import Settings, pass_settings
from monitor.store.engine import make_engine, redact
from monitor.store.migrate import upgrade as migrate


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
@click.option("--url", help="Database URL (default: storage.url from the configuration).")
@pass_settings
def upgrade(settings: Settings, url: str | None) -> None:
    """Create or migrate the tables to this version's schema (safe to run repeatedly)."""
    target = url or settings.config().storage.url
    engine = make_engine(target)
    try:
        before, after = migrate(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"{redact(target)} is already at revision {after}")
    else:
        click.echo(f"{redact(target)} upgraded from {before or 'empty'} to revision {after}")
