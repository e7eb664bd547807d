"""``monitor backfill``: the live detectors over every window of a past range."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from modeltap.errors import InputError
from modeltap.schema import FAMILIES
from monitor.commands import Settings, open_store, pass_settings

if TYPE_CHECKING:
    from detectors.backfill_pool import Job, Summary
    from detectors.settings import ModelSettings
    from detectors.windows import Window
    from modeltap.store import SqlStore


@click.command()
@click.option("--model", required=True, help="The configured model to backfill.")
@click.option("--version", help="Only this version (A/B needs them all, so it gives none).")
@click.option("--start", required=True, help="Start of the range (ISO 8601 with a timezone).")
@click.option("--end", required=True, help="End of the range (ISO 8601 with a timezone).")
@click.option("--window", "window_text", help="Window size, e.g. 1h [detectors.window].")
@click.option(
    "--source",
    default="storage",
    show_default=True,
    help="storage, or a file of past predictions: Parquet (file or folder), CSV, JSON lines.",
)
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Late labels for a --source file, as `monitor labels import` takes them.",
)
@click.option(
    "--reference",
    "reference_file",
    type=click.Path(path_type=Path),
    help="Score against a profile fitted from this file [the stored reference].",
)
@click.option(
    "--detectors",
    "detectors",
    multiple=True,
    type=click.Choice(FAMILIES),
    help="Only these detectors (repeatable) [all].",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--time-column", default="ts", show_default=True, help="A file's time column.")
@click.option("--report", "report_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--openmetrics",
    "openmetrics_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the results as OpenMetrics for promtool tsdb create-blocks-from.",
)
@click.option(
    "--openmetrics-step",
    default="4m",
    show_default=True,
    help="Spacing of the OpenMetrics samples (keep it under Prometheus' 5 m lookback).",
)
@click.option("--recompute", is_flag=True, help="Compute windows an earlier run finished too.")
@click.option("--dry-run", is_flag=True, help="Show the windows and rows; write nothing.")
@pass_settings
def backfill(
    settings: Settings,
    *,
    model: str,
    version: str | None,
    start: str,
    end: str,
    window_text: str | None,
    source: str,
    labels_file: Path | None,
    reference_file: Path | None,
    detectors: tuple[str, ...],
    workers: int,
    time_column: str,
    report_file: Path | None,
    openmetrics_file: Path | None,
    openmetrics_step: str,
    recompute: bool,
    dry_run: bool,
) -> None:
    """Run the live detectors over every window from --start to --end and store the results.

    Windows are cut and scored by the same code as `monitor detect`, so a backfilled window
    equals the same window computed live. Results are upserted: running it again writes the
    same rows, and a run stopped with Ctrl-C (after the window in hand) resumes where it
    stopped. A --source file has a time column, every configured feature, a prediction, and
    optionally score, version, request_id (+ row_index) or the model's instance id field,
    latency_ms and status_code; it is read window by window. Exit 2 on bad input, with
    nothing written.

    \b
    Examples:
      monitor backfill --model churn --start 2026-10-01T00:00Z --end 2026-11-01T00:00Z
      monitor backfill --model churn --start 2026-10-01T00:00Z --end 2026-10-08T00:00Z \\
        --source export/ --labels truth.csv --workers 2 --report october.html
    """
    from detectors import backfill as plan  # noqa: PLC0415 - statistics off `--help`
    from detectors.backfill_pool import Job, run  # noqa: PLC0415
    from detectors.settings import ModelSettings  # noqa: PLC0415
    from modeltap.files import parse_moment  # noqa: PLC0415
    from modeltap.units import parse_duration  # noqa: PLC0415

    config = settings.config()
    model_settings = ModelSettings.from_config(config, model)
    size = _duration(window_text, "--window", parse_duration) if window_text else None
    size = size or config.detectors.window
    step = _duration(openmetrics_step, "--openmetrics-step", parse_duration)
    found = plan.windows(parse_moment(start, "--start"), parse_moment(end, "--end"), size)
    now = plan.as_of(found)
    chosen = tuple(name for name in FAMILIES if not detectors or name in detectors)
    job = Job(config, model, size, now, chosen, version=version)
    job = _with_inputs(
        job, model_settings, source=source, labels_file=labels_file,
        reference_file=reference_file, time_column=time_column,
    )  # fmt: skip
    console = Console(stderr=True)
    store = open_store(config)
    file_source = None
    try:
        source_obj, file_source = _open(job, store)
        observed = source_obj.event_counts(found[0].start, found[-1].end, size)
        finished = (
            set()
            if recompute
            else plan.done(store, job.settings(), chosen, found, counts=observed, now=now)
        )
        todo = [window for window in found if window not in finished]
        if file_source is not None and file_source.scratch() is not None:
            job = _replace(job, scratch=file_source.scratch())
        if dry_run:
            _print_plan(console, found, todo, observed)
            return
        with _stoppable(console) as stop, _progress(console, len(todo)) as advance:
            summary = run(
                job, store, source_obj, todo, observed, workers=workers, stop=stop,
                progress=advance,
            )  # fmt: skip
        summary.skipped = len(found) - len(todo)
        _print_summary(console, summary)
        if report_file is not None:
            _write_report(
                store, model_settings, found, report_file, console=console, source=source_obj,
                job=job,
            )  # fmt: skip
        if openmetrics_file is not None:
            _write_openmetrics(store, model, found, openmetrics_file, step=step, console=console)
        if summary.stopped:
            console.print(
                f"stopped after {summary.windows} of {len(todo)} windows; run the same "
                "command again to resume"
            )
            sys.exit(1)
    finally:
        if file_source is not None:
            file_source.close()
        store.close()


def _duration(text: str, option: str, parse: Any) -> timedelta:
    try:
        value = parse(text)
    except ValueError:
        value = None
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InputError(f"{option}: {text!r} is not a duration such as 30m, 1h or 1d")
    return value


def _with_inputs(
    job: Job,
    model_settings: ModelSettings,
    *,
    source: str,
    labels_file: Path | None,
    reference_file: Path | None,
    time_column: str,
) -> Job:
    """The job with its file, labels and reference checked and loaded (nothing written)."""
    from datetime import UTC  # noqa: PLC0415

    from detectors.history import Columns, read_labels  # noqa: PLC0415

    model_config = job.config.model(job.model)
    assert model_config is not None
    file = None if source == "storage" else Path(source)
    if labels_file is not None and file is None:
        raise InputError("--labels joins a --source file; stored traffic has its labels stored")
    columns = Columns(ts=time_column, instance_id=model_config.payload.instance_id_field)
    labels = None
    if labels_file is not None:
        field = model_config.payload.label_field
        labels = read_labels(labels_file, field, datetime.now(UTC))
    profiles = None
    if reference_file is not None:
        profiles = {"": _fit_reference(model_settings, reference_file).to_json()}
    return _replace(job, file=file, columns=columns, labels=labels, profiles=profiles)


def _fit_reference(model_settings: ModelSettings, path: Path) -> Any:
    from detectors import fitting  # noqa: PLC0415
    from modeltap.files import read_table  # noqa: PLC0415

    frame = read_table(path)
    missing = [name for name in model_settings.kinds if name not in frame.columns]
    if missing:
        raise InputError(
            f"the reference {path} does not match model {model_settings.model!r}: it has no "
            f"column {', '.join(repr(m) for m in missing)}"
        )
    return fitting.fit_rows(model_settings, fitting.rows_from_table(model_settings, frame))


def _replace(job: Job, **changes: Any) -> Job:
    from dataclasses import replace  # noqa: PLC0415

    return replace(job, **changes)


def _open(job: Job, store: SqlStore) -> tuple[Any, Any]:
    from detectors.backfill_pool import open_source  # noqa: PLC0415
    from detectors.history import FileSource  # noqa: PLC0415

    source = open_source(job, store)
    if isinstance(source, FileSource):
        source.prepare(job.size)
        return source, source
    return source, None


@contextmanager
def _stoppable(console: Console) -> Iterator[Any]:
    """A stop flag set by the first Ctrl-C; a second one interrupts at once."""
    asked: list[bool] = []

    def handler(signum: int, frame: object) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(True)
        console.print("stopping after the windows in hand (Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _progress(console: Console, total: int) -> Iterator[Any]:
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    rows = [0]
    with Progress(
        TextColumn("backfill"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("windows · {task.fields[rate]} rows/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("backfill", total=total, rate="0")

        def advance(window: Window, counts: tuple[int, int]) -> None:
            rows[0] += counts[1]
            elapsed = progress.tasks[task].elapsed or 0.0
            rate = f"{rows[0] / elapsed:,.0f}" if elapsed > 0 else "0"
            progress.update(task, advance=1, rate=rate)

        yield advance


def _print_plan(
    console: Console,
    found: list[Window],
    todo: list[Window],
    observed: dict[datetime, tuple[int, int]],
) -> None:
    rows = sum(observed.get(window.start, (0, 0))[1] for window in todo)
    with_data = sum(1 for window in todo if window.start in observed)
    console.print(
        f"dry run: {len(found)} windows from {found[0].start.isoformat()} to "
        f"{found[-1].end.isoformat()}; {len(todo)} to compute ({with_data} with data, "
        f"{rows:,} prediction rows), {len(found) - len(todo)} done by an earlier run; "
        "nothing written"
    )


def _print_summary(console: Console, summary: Summary) -> None:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title="backfill")
    for name in ("detector", "results", "alerts"):
        table.add_column(name, justify="left" if name == "detector" else "right")
    for detector in FAMILIES:
        if detector in summary.results:
            table.add_row(detector, str(summary.results[detector]), str(summary.alerts[detector]))
    console.print(table)
    rate = summary.rows / summary.seconds if summary.seconds else 0.0
    console.print(
        f"{summary.windows} windows computed, {summary.skipped} already done, "
        f"{summary.rows:,} prediction rows and {summary.requests:,} requests in "
        f"{summary.seconds:.1f} s ({rate:,.0f} rows/s)"
    )


def _write_report(
    store: SqlStore,
    model_settings: ModelSettings,
    found: list[Window],
    path: Path,
    *,
    console: Console,
    source: Any,
    job: Job,
) -> None:
    from detectors.profile import Profile  # noqa: PLC0415
    from monitor.report import write_report  # noqa: PLC0415

    # The distributions are read from where the backfill read, against what it scored with.
    profiles: dict[str, Profile | None] | None = None
    if job.profiles is not None:
        fitted = Profile.from_json(job.profiles[""])
        versions = {
            r.version for r in store.results_between(job.model, found[0].start, found[-1].end)
        }
        profiles = dict.fromkeys(versions, fitted)
    size = write_report(
        store, model_settings, found[0].start, found[-1].end, path, source=source,
        profiles=profiles,
    )  # fmt: skip
    console.print(f"report: {path} ({size / 1024:,.0f} KiB)")


def _write_openmetrics(
    store: SqlStore,
    model: str,
    found: list[Window],
    path: Path,
    *,
    step: timedelta,
    console: Console,
) -> None:
    from exporters.openmetrics import write_openmetrics  # noqa: PLC0415

    results = store.results_between(model, found[0].start, found[-1].end)
    series = write_openmetrics(results, path, step=step)
    console.print(
        f"openmetrics: {path} ({series} series); load it with "
        f"promtool tsdb create-blocks-from openmetrics {path} <prometheus data dir>"
    )
