"""``monitor check``: the detectors over two files, as a gate in a CI/CD pipeline."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from modeltap.errors import InputError
from monitor.commands import Settings, pass_settings

if TYPE_CHECKING:
    from detectors.settings import ModelSettings
    from modeltap.schema import DetectorResult


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
@click.option(
    "--allow-insufficient",
    is_flag=True,
    help="Pass checks that had too little data to decide instead of failing the gate.",
)
@click.option(
    "--failures-only", is_flag=True, help="Text output: only what failed or could not decide."
)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Text output: also every raw drift test behind each feature's verdict.",
)
@pass_settings
def check(
    settings: Settings,
    *,
    reference_file: Path,
    current_file: Path,
    labels_file: Path | None,
    model: str | None,
    output: str,
    id_column: str | None,
    label_column: str | None,
    task: str | None,
    allow_insufficient: bool,
    failures_only: bool,
    show_all: bool,
) -> None:
    """Compare two files with the detectors; exit 0 if every check passes, 1 if any fails.

    Reads CSV, TSV, Parquet, JSON or JSON lines: a column per feature, plus optional
    prediction and score columns (and labels in --labels). Runs data quality, drift per
    feature, dataset and prediction drift, and with labels the performance metrics, with the
    thresholds of the configuration. With a label column in the reference, performance is
    estimated too (CBPE, DLE), and the numerical features are judged together (PCA
    reconstruction error). No store, no daemon.

    \b
    The gate counts each feature's drift verdict (the configured method, PSI by default),
    not the raw tests behind it; a check with too little data to decide fails the gate
    unless --allow-insufficient. Exit 2 on bad usage or unreadable input.

    \b
    Example:
      monitor check --reference train.csv --current holdout.csv --labels truth.csv \\
                    --config modeltap.yaml --format junit > drift.xml
    """
    if failures_only and show_all:
        raise click.UsageError("--failures-only and --all show different rows; choose one")
    # The statistics pull in scipy and pandas: imported here, not for every `monitor --help`.
    from detectors import fitting  # noqa: PLC0415
    from detectors.emit import Scope  # noqa: PLC0415
    from detectors.evaluate import evaluate  # noqa: PLC0415
    from detectors.offline import (  # noqa: PLC0415
        join_labels,
        looks_continuous,
        model_for_table,
    )
    from detectors.settings import ModelSettings  # noqa: PLC0415
    from detectors.windows import Window  # noqa: PLC0415
    from modeltap.files import read_table  # noqa: PLC0415
    from monitor.render import deciding, failed, summarise, table, to_json, to_junit  # noqa: PLC0415

    # The model's features and thresholds, from --config when given (else defaults only).
    config = settings.config()
    reference_frame = read_table(reference_file)
    current_frame = read_table(current_file)
    model_config = model_for_table(config, model, reference_frame, task)
    model_settings = ModelSettings.from_model(config, model_config)
    profile = fitting.fit_rows(
        model_settings,
        fitting.rows_from_table(
            model_settings, reference_frame, what=f"reference file {reference_file}"
        ),
    )
    current = fitting.rows_from_table(
        model_settings, current_frame, what=f"current file {current_file}"
    )
    if labels_file is not None:
        labels_frame = read_table(labels_file)
        label_field = label_column or model_config.payload.label_field
        if (
            model_config.task == "classification"
            and task != "classification"
            and label_field in labels_frame
            and looks_continuous(labels_frame[label_field])
        ):
            fix = (
                "pass --task regression (or --task classification to treat each value as a class)"
                if not config.models
                else f"set task: regression for model {model_config.name!r} in the configuration"
            )
            raise InputError(
                f"the labels in {labels_file} are continuous numbers "
                f"({labels_frame[label_field].nunique()} distinct values) but the model is "
                f"checked as a classifier; {fix}"
            )
        truth = join_labels(
            labels_frame,
            current_frame,
            id_column or model_config.payload.instance_id_field,
            label_field,
            required=id_column is not None,
        )
        current = replace(current, label=truth)
    # A file's rows carry no times, so when the window is does not matter; any instant does.
    now = datetime.now(UTC)
    detectors = ["quality", "drift"] + (["performance"] if labels_file is not None else [])
    # The estimators run where the reference could fit them (labels and scores in the
    # reference file, numerical features enough): a gate must not fail on what never applied.
    fitted = profile.estimators
    if fitted is not None and (fitted.cbpe is not None or fitted.dle is not None):
        detectors.append("estimation")
    if fitted is not None and (fitted.reconstruction is not None or fitted.sample is not None):
        detectors.append("multivariate")
    results = [
        result
        for result in evaluate(
            model_settings,
            Scope(model_settings.model, "", Window(now, now), now),
            detectors=detectors,
            rows={"": current},
            profiles={"": profile},
        )
        # How late labels came needs label times, which files do not have.
        if result.detector != "label_delay_s"
    ]
    counts = summarise(results)
    undecided = counts.skipped and not allow_insufficient
    if output == "json":
        click.echo(to_json(results))
    elif output == "junit":
        suite = f"modeltap.check.{model_settings.model}"
        click.echo(to_junit(results, suite, insufficient_fails=bool(undecided)), nl=False)
    else:
        shown = [
            r
            for r in results
            if show_all or (deciding(r) and (not failures_only or failed(r) or r.status != "ok"))
        ]
        console = Console(width=None if sys.stdout.isatty() else 160)
        console.print(
            table(
                shown,
                f"{model_settings.model}: {current_file} against {reference_file}"
                + (" (failures only)" if failures_only else ""),
                versions=False,
            )
        )
        console.print(
            f"{counts.total} checks: {counts.passed} passed, {counts.failed} failed, "
            f"{counts.skipped} with too little data"
        )
    if undecided:
        click.echo(
            f"check: {_undecided(results, len(current), model_settings)}; the gate fails "
            "(check more rows, lower the setting, or pass --allow-insufficient)",
            err=True,
        )
    if counts.failed or undecided:
        sys.exit(1)


def _undecided(results: list[DetectorResult], rows: int, model: ModelSettings) -> str:
    """Which checks could not decide and which setting asked for more rows, in one clause."""
    from monitor.render import deciding, family  # noqa: PLC0415

    skipped = [r for r in results if r.status == "insufficient_data" and deciding(r)]
    families = {family(r.detector) for r in skipped}
    needs = [
        f"{len(skipped)} check(s) had too little data to decide: the current file has {rows} rows"
    ]
    if "drift" in families:
        needs.append(
            f"drift needs detectors.drift.min_current_size = {model.drift.min_current_size}"
        )
    if "performance" in families:
        needs.append(f"performance needs detectors.min_rows = {model.min_rows} labelled rows")
    if "estimation" in families:
        needs.append(
            f"estimation needs detectors.estimation.min_rows = {model.estimation.min_rows}"
        )
    if "multivariate" in families:
        needs.append(
            f"multivariate drift needs detectors.multivariate.min_rows = "
            f"{model.multivariate.min_rows} complete rows"
        )
    return ", ".join(needs)
