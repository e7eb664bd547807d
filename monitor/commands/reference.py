"""``monitor reference``: fit a model's reference profile once, and look at it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from modeltap.errors import InputError
from monitor.commands import Settings, open_store, pass_settings


@click.group()
def reference() -> None:
    """Fit and inspect reference profiles (what windows are scored against)."""


@reference.command("set")
@click.option("--model", required=True, help="The configured model to fit a reference for.")
@click.option("--version", default="", help="Only for this model version (default: every version).")
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Training or validation data: CSV, Parquet or JSON lines, a column per feature.",
)
@click.option("--start", help="Or: stored traffic from this time (ISO 8601, with timezone) ...")
@click.option("--end", help="... up to this time.")
@click.option("--prediction-column", default="prediction", show_default=True)
@click.option(
    "--score-column",
    default="score",
    show_default=True,
    help="The positive class's score; a multiclass model's probabilities are read from a "
    "column per class, named this, '_' and the class (score_setosa, score_virginica, ...).",
)
@pass_settings
def set_reference(
    settings: Settings,
    *,
    model: str,
    version: str,
    file: Path | None,
    start: str | None,
    end: str | None,
    prediction_column: str,
    score_column: str,
) -> None:
    """Fit a versioned reference profile from a file or a stored time range.

    The profile keeps a bounded sorted sample, PSI bins and shares, category counts,
    ranges and missing ratios per feature (and per segment); windows are scored against
    it, never against the raw reference data again.

    \b
    Examples:
      monitor reference set --model churn --file train.parquet
      monitor reference set --model churn --start 2026-11-01T00:00Z --end 2026-11-08T00:00Z
    """
    from detectors import fitting  # noqa: PLC0415 - scipy and pandas, only when used
    from detectors.settings import ModelSettings  # noqa: PLC0415
    from modeltap.files import parse_moment, read_table  # noqa: PLC0415

    config = settings.config()
    model_settings = ModelSettings.from_config(config, model)
    if (file is None) == (start is None and end is None):
        raise InputError("give either --file, or --start and --end")
    if file is not None:
        rows = fitting.rows_from_table(
            model_settings,
            read_table(file),
            prediction=prediction_column,
            score=score_column,
            what=f"file {file}",
        )
        source = f"file {file}"
    else:
        if start is None or end is None:
            raise InputError("--start and --end go together")
        begin, until = parse_moment(start, "--start"), parse_moment(end, "--end")
        if begin >= until:
            raise InputError("--start must be before --end")
        source = f"traffic {begin.isoformat()} .. {until.isoformat()}"
    store = open_store(config)
    try:
        if file is None:
            rows = fitting.rows_from_store(store, model_settings, begin, until, version or None)
        profile = fitting.fit_rows(model_settings, rows)
        stored = fitting.save(
            store, model_settings, profile, version=version, source=source, now=datetime.now(UTC)
        )
    finally:
        store.close()
    segments = (
        f", {len(profile.segments)} segment(s) of {profile.segment_by}" if profile.segments else ""
    )
    Console(soft_wrap=True).print(
        f"stored reference profile {stored.profile_version} for {model} "
        f"({'version ' + version if version else 'every version'}): {profile.rows} rows, "
        f"{len(profile.columns)} feature(s){segments}; from {source}"
    )


@reference.command("show")
@click.option("--model", required=True)
@click.option("--version", default="", help="The version's own profile (default: the model's).")
@pass_settings
def show_reference(settings: Settings, *, model: str, version: str) -> None:
    """Print the newest stored reference profile of a model (and version)."""
    from detectors.profile import Profile  # noqa: PLC0415 - scipy and pandas, only when used
    from detectors.stats.reference import CategoricalReference, NumericalReference  # noqa: PLC0415
    from monitor.render import number  # noqa: PLC0415

    config = settings.config()
    store = open_store(config)
    try:
        stored = store.get_reference(model, version)
    finally:
        store.close()
    if stored is None:
        raise InputError(
            f"no reference profile for {model}{' version ' + version if version else ''}; "
            "fit one with `monitor reference set`"
        )
    profile = Profile.from_json(stored.profile)
    view = Table(
        title=(
            f"{model} ({'version ' + version if version else 'every version'}): reference "
            f"profile {stored.profile_version} from {stored.source}, fitted "
            f"{stored.created_at:%Y-%m-%d %H:%M} UTC: {profile.rows} rows"
        ),
        title_justify="left",
    )
    for name in ("feature", "kind", "usable", "missing", "violations", "range / top categories"):
        view.add_column(name)
    for name, column in profile.columns.items():
        if isinstance(column, NumericalReference):
            spread = (
                f"{number(column.minimum)} .. {number(column.maximum)}, mean {number(column.mean)}"
            )
        else:
            assert isinstance(column, CategoricalReference)
            top = sorted(column.counts.as_dict().items(), key=lambda item: -item[1])[:3]
            spread = ", ".join(f"{key} {count / max(column.size, 1):.0%}" for key, count in top)
        view.add_row(
            name, column.kind, str(column.size), str(column.missing), str(column.violations), spread
        )
    Console().print(view)
