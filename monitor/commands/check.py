"""``monitor check``: the detectors over two files, as a gate in a CI/CD pipeline."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console

from modeltap.configload import load_config
from monitor.commands import Settings, pass_settings


@click.command()
@click.option(
    "--reference",
    "reference_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The reference data.",
)
@click.option(
    "--current",
    "current_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The data to check.",
)
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Ground truth for the current rows (same order, or joined on --id-column).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Configuration with the model's features and thresholds.",
)
@click.option("--model", help="Which configured model (default: the only one).")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "junit"]),
    default="text",
    show_default=True,
)
@click.option("--id-column", help="Column joining --labels to the current rows.")
@click.option("--label-column", help="Column of --labels holding the truth [payload.label_field].")
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    help="Without a configured model: what the model predicts [classification].",
)
@pass_settings
def check(
    settings: Settings,
    *,
    reference_file: Path,
    current_file: Path,
    labels_file: Path | None,
    config_file: Path | None,
    model: str | None,
    output: str,
    id_column: str | None,
    label_column: str | None,
    task: str | None,
) -> None:
    """Compare two files with the detectors; exit 0 if every check passes, 1 if any fails.

    Reads CSV, Parquet or JSON lines: a column per feature, plus optional prediction and
    score columns (and labels in --labels). Runs data quality, drift per feature, dataset
    and prediction drift, and with labels the performance metrics, with the thresholds of
    the configuration. No store, no daemon. Exit 2 on bad usage or unreadable input.

    \b
    Example:
      monitor check --reference train.csv --current holdout.csv --labels truth.csv \\
                    --config modeltap.yaml --format junit > drift.xml
    """
    # The statistics pull in scipy and pandas: imported here, not for every `monitor --help`.
    from detectors import fitting  # noqa: PLC0415
    from detectors.emit import Scope  # noqa: PLC0415
    from detectors.evaluate import evaluate  # noqa: PLC0415
    from detectors.offline import join_labels, model_for_table  # noqa: PLC0415
    from detectors.settings import ModelSettings  # noqa: PLC0415
    from detectors.windows import Window  # noqa: PLC0415
    from modeltap.files import read_table  # noqa: PLC0415
    from monitor.render import summarise, table, to_json, to_junit  # noqa: PLC0415

    config = load_config(config_file, settings.env) if config_file else settings.config()
    reference_frame = read_table(reference_file)
    current_frame = read_table(current_file)
    model_config = model_for_table(config, model, reference_frame, task)
    model_settings = ModelSettings.from_model(config, model_config)
    profile = fitting.fit_rows(
        model_settings, fitting.rows_from_table(model_settings, reference_frame)
    )
    current = fitting.rows_from_table(model_settings, current_frame)
    if labels_file is not None:
        truth = join_labels(
            read_table(labels_file),
            current_frame,
            id_column or model_config.payload.instance_id_field,
            label_column or model_config.payload.label_field,
        )
        current = replace(current, label=truth)
    now = datetime.now(UTC)
    detectors = ["quality", "drift"] + (["performance"] if labels_file is not None else [])
    results = evaluate(
        model_settings,
        Scope(model_settings.model, "", Window(now, now), now),
        detectors=detectors,
        rows={"": current},
        profiles={"": profile},
    )
    if output == "json":
        click.echo(to_json(results))
    elif output == "junit":
        click.echo(to_junit(results, f"modeltap.check.{model_settings.model}"), nl=False)
    else:
        console = Console(width=None if sys.stdout.isatty() else 160)
        console.print(
            table(
                results,
                f"{model_settings.model}: {current_file} against {reference_file}",
                versions=False,
            )
        )
        counts = summarise(results)
        console.print(
            f"{counts.total} checks: {counts.passed} passed, {counts.failed} failed, "
            f"{counts.skipped} with too little data"
        )
    if summarise(results).failed:
        sys.exit(1)
