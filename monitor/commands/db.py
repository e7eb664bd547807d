"""``monitor db``: schema migrations and retention."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from modeltap.errors import InputError
from monitor.commands import Settings, pass_settings

if TYPE_CHECKING:
    from modeltap.schema import PurgeSummary


@click.group()
def db() -> None:
    """Manage the database: schema migrations and retention."""


@db.command()
@click.option("--url", help="Database URL (default: storage.url from the configuration).")
@pass_settings
def upgrade(settings: Settings, url: str | None) -> None:
    """Create or migrate the tables to this version's schema (safe to run repeatedly)."""
    from modeltap.store import make_engine, redact  # noqa: PLC0415 - keep `monitor --help` fast
    from modeltap.store import upgrade as migrate  # noqa: PLC0415

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
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--yes", is_flag=True, help="Delete without asking (needed when not on a terminal).")
@pass_settings
def purge(
    settings: Settings, older_than: str | None, url: str | None, dry_run: bool, yes: bool
) -> None:
    """Delete events, labels and results older than the retention period.

    `monitor serve` does this every hour on its own; run it by hand to reclaim space now.
    On PostgreSQL whole days go as partitions, so the purge is quick whatever the volume.
    It asks first (or takes --yes); --dry-run shows the counts without deleting.
    """
    from modeltap.store import open_store  # noqa: PLC0415 - keep `monitor --help` fast
    from modeltap.units import parse_duration  # noqa: PLC0415 - pydantic, off `--help`

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
        if not dry_run and not yes:
            if not _interactive():
                raise InputError(
                    f"this deletes everything before {cutoff:%Y-%m-%d %H:%M} UTC; pass --yes "
                    "to do it, or --dry-run to see how much that is"
                )
            counted = store.purge(cutoff, dry_run=True)
            click.confirm(
                f"delete everything before {cutoff:%Y-%m-%d %H:%M} UTC ({_counts(counted)})?",
                abort=True,
            )
        summary = store.purge(cutoff, dry_run=dry_run)
    finally:
        store.close()
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} everything before {cutoff:%Y-%m-%d %H:%M} UTC: {_counts(summary)}")


def _interactive() -> bool:
    return sys.stdin.isatty()


def _counts(summary: PurgeSummary) -> str:
    return (
        f"{summary.requests} requests, "
        f"{summary.predictions} prediction rows, {summary.labels} labels, {summary.results} "
        f"results, {summary.runs} run records, {summary.windows} window records "
        f"({summary.partitions_dropped} partitions dropped)"
    )
