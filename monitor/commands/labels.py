"""``monitor labels``: load late ground truth from files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from modeltap.errors import InputError, ModeltapError
from modeltap.schema import EventBatch, LabelRecord, WriteSummary
from monitor.commands import Settings, pass_settings


class RejectedRowsError(ModeltapError):
    """Some rows were invalid and skipped (--skip-invalid); the rest were stored."""


@click.group()
def labels() -> None:
    """Load late labels (ground truth)."""


@labels.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", help="Model the labels belong to (picks its payload.label_field).")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Store the valid rows and report the others, instead of storing nothing.",
)
@pass_settings
def import_(settings: Settings, /, file: Path, model: str | None, skip_invalid: bool) -> None:
    """Import labels from a CSV, JSON-lines or Parquet FILE.

    Columns/fields: request_id (+ row_index) or instance_id, the label (column 'label', or
    the model's payload.label_field), optional time and model. Every row is checked first:
    if any is invalid nothing is stored (exit 2) unless --skip-invalid. Labels upsert on
    their key, so an interrupted import can simply be run again.

    \b
    Example:
      monitor labels import ground_truth.csv --model churn
    """
    # The label model (pydantic) and the store (SQLAlchemy): not for every `monitor --help`.
    from modeltap.labelfiles import read_chunks  # noqa: PLC0415
    from modeltap.labels import label_field_for  # noqa: PLC0415
    from modeltap.store import open_store  # noqa: PLC0415

    config = settings.config()
    if model is not None:
        # Labels for a model no detector reads would never be joined to a prediction.
        config.require_model(model)
    field = label_field_for(config, model)
    received = datetime.now(UTC)
    # Two passes keep memory flat for any file size: check every row, then store.
    rejected: list[str] = []
    total = 0
    for chunk in read_chunks(file):
        rejected.extend(_check(chunk, received, field, model)[1])
        total += len(chunk)
    if total == 0:
        raise InputError(f"{file} holds no label rows; nothing was stored")
    if rejected and not skip_invalid:
        raise InputError(
            f"{len(rejected)} of {total} row(s) in {file.name} are invalid, so nothing was "
            "stored (fix them, or pass --skip-invalid):\n  "
            + "\n  ".join(rejected[:10])
            + ("\n  …" if len(rejected) > 10 else "")
        )
    store = open_store(config.storage.url)
    summary = WriteSummary()
    columns = (
        TextColumn("importing labels"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} rows"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("import", total=total - len(rejected))
            for chunk in read_chunks(file):
                valid = _check(chunk, received, field, model)[0]
                summary += store.write(EventBatch(labels=valid))
                progress.advance(task, len(valid))
    finally:
        store.close()
    click.echo(
        f"{file.name}: {summary.labels_written} written, {summary.labels_updated} "
        f"updated, {len(rejected)} rejected; {summary.labels_unmatched} match no stored "
        "prediction yet"
    )
    if summary.labels_unmatched:
        # Not an error: labels may come before their predictions are collected. But a whole
        # file that matches nothing is usually the wrong id column or the wrong model.
        click.echo(
            f"note: {summary.labels_unmatched} of {total - len(rejected)} label(s) name a "
            "request_id/instance_id no stored prediction has; check the id column "
            "(payload.instance_id_field) if they should have matched",
            err=True,
        )
    if rejected:
        raise RejectedRowsError(
            f"{len(rejected)} invalid row(s) were skipped:\n  " + "\n  ".join(rejected[:10])
        )


def _check(
    chunk: list[tuple[int, Any]], received: datetime, field: str, model: str | None
) -> tuple[list[LabelRecord], list[str]]:
    from modeltap.labels import LabelError, parse_labels  # noqa: PLC0415

    valid: list[LabelRecord] = []
    bad: list[str] = []
    for number, record in chunk:
        if isinstance(record, str):
            bad.append(f"row {number}: {record}")
            continue
        if model is not None and isinstance(record, dict):
            record.setdefault("model", model)
        try:
            valid.extend(
                parse_labels(
                    [record], received, label_field=field, where=f"row {number}", indexed=False
                )
            )
        except LabelError as error:
            bad.append(str(error))
    return valid, bad
