"""``monitor db``: schema migrations and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from modeltap.errors import InputError
from modeltap.store import make_engine, redact
from modeltap.store import upgrade as migrate
from modeltap.units import parse_duration
from monitor.commands import Settings, pass_settings


@click.group()
def db() -> None:
    """Manage the database: schema migrations and retention."""


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


@db.command()
@click.option(
    "--older-than", metavar="DURATION", help="Keep this much history, e.g. 30d [storage.retention]."
)
@click.option("--url", help="Database URL (default: storage.url from the configuration).")
@pass_settings
def purge(settings: Settings, older_than: str | None, url: str | None) -> None:
    """Delete events, labels and results older than the retention period.

    `monitor serve` does this every hour on its own; run it by hand to reclaim space now.
    On PostgreSQL whole days go as partitions, so the purge is quick whatever the volume.
    """
    from modeltap.store import open_store  # noqa: PLC0415 - keep `monitor --help` fast

    config = settings.config()
    keep = config.storage.retention
    if older_than is not None:
        try:
            parsed = parse_duration(older_than)
        except ValueError as error:
            raise InputError(f"--older-than: {error}") from None
        assert isinstance(parsed, timedelta)
        keep = parsed
    target = url or config.storage.url
    store = open_store(target)
    try:
        cutoff = datetime.now(UTC) - keep
        summary = store.purge(cutoff)
    finally:
        store.close()
    click.echo(
        f"removed everything before {cutoff:%Y-%m-%d %H:%M} UTC: {summary.requests} requests, "
        f"{summary.predictions} prediction rows, {summary.labels} labels, {summary.results} "
        f"results, {summary.runs} run records, {summary.windows} window records "
        f"({summary.partitions_dropped} partitions dropped)"
    )
