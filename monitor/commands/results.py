"""``monitor results``: what the detectors found for a model over a time range, without SQL."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from modeltap.errors import InputError
from monitor.commands import Settings, open_store, pass_settings

if TYPE_CHECKING:
    from modeltap.schema import DetectorResult, RunHealth


@click.command()
@click.option("--model", required=True, help="The configured model.")
@click.option("--version", help="Only this model version (default: every version).")
@click.option(
    "--start", help="Windows from this time (ISO 8601 with timezone) [--end minus --last]."
)
@click.option("--end", help="Windows up to this time [now].")
@click.option(
    "--last", default="24h", show_default=True, metavar="DURATION", help="Range without --start."
)
@click.option(
    "--alerts-only", is_flag=True, help="Only what alerted and what could not be computed."
)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Every stored result, the raw drift tests and every window included.",
)
@click.option(
    "--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option("--fail-on-alert", is_flag=True, help="Exit 1 if anything alerted in the range.")
@pass_settings
def results(
    settings: Settings,
    *,
    model: str,
    version: str | None,
    start: str | None,
    end: str | None,
    last: str,
    alerts_only: bool,
    show_all: bool,
    output: str,
    fail_on_alert: bool,
) -> None:
    """Show stored detector results: what alerted and when, the newest window, and why a
    result is missing (its reason, and each detector's last run).

    \b
    Examples:
      monitor results --model churn                      # the last 24 hours
      monitor results --model churn --last 7d --alerts-only
      monitor results --model churn --start 2026-11-20T00:00Z --end 2026-11-21T00:00Z \\
                      --format json
    """
    from modeltap.files import parse_moment  # noqa: PLC0415
    from modeltap.units import parse_duration  # noqa: PLC0415 - pydantic, off `--help`
    from monitor.render import deciding, failed  # noqa: PLC0415

    config = settings.config()
    config.require_model(model)
    until = parse_moment(end, "--end") if end else datetime.now(UTC)
    if start:
        since = parse_moment(start, "--start")
    else:
        try:
            span = parse_duration(last)
        except ValueError as error:
            raise InputError(f"--last: {error}") from None
        assert isinstance(span, timedelta)
        since = until - span
    if since >= until:
        raise InputError("--start must be before --end")
    store = open_store(config)
    try:
        # Every window that overlaps the range, the one still open included.
        size = config.detectors.window
        stored = [
            r
            for r in store.results_between(model, since - size, until + size, version=version)
            if r.window_end > since and r.window_start < until
        ]
        runs = store.run_health(model)
    finally:
        store.close()
    chosen = [r for r in stored if show_all or deciding(r)]
    alerts = [r for r in chosen if failed(r)]
    if alerts_only:
        chosen = [r for r in chosen if failed(r) or r.status != "ok"]
    if output == "json":
        click.echo(_json(model, since, until, chosen, alerts, runs))
    else:
        _print(Console(width=None if sys.stdout.isatty() else 160), model, since, until,
               chosen, alerts, runs, every_window=show_all or alerts_only)  # fmt: skip
    if fail_on_alert and alerts:
        sys.exit(1)


def _print(  # noqa: PLR0917 - one call site, the command's parsed arguments in order
    console: Console,
    model: str,
    since: datetime,
    until: datetime,
    chosen: Sequence[DetectorResult],
    alerts: Sequence[DetectorResult],
    runs: Sequence[RunHealth],
    *,
    every_window: bool,
) -> None:
    from monitor.render import table  # noqa: PLC0415

    windows = sorted({(r.window_start, r.window_end) for r in chosen})
    console.print(
        f"{model}: {len(windows)} window(s) stored between {since:%Y-%m-%d %H:%M} and "
        f"{until:%Y-%m-%d %H:%M} UTC; {len(alerts)} alert(s)"
    )
    for run in runs:
        state = "[green]ok[/]" if run.last_status == "ok" else f"[red]{run.last_status}[/]"
        console.print(
            f"  {run.detector}: last run {run.last_started_at:%Y-%m-%d %H:%M} UTC {state}"
            + (
                f", {run.consecutive_failures} failure(s) in a row"
                if run.consecutive_failures
                else ""
            )
            + (f"\n    [red]{run.last_error}[/]" if run.last_error else "")
        )
    if not runs:
        console.print("  no detector has run for this model yet; start `monitor detect`")
    if not windows:
        return
    if alerts and not every_window:
        console.print(table(alerts, "alerts in the range", windows=True))
    if every_window:
        console.print(table(chosen, "every window", windows=True))
        return
    newest = [r for r in chosen if (r.window_start, r.window_end) == windows[-1]]
    title = f"newest window {windows[-1][0]:%Y-%m-%d %H:%M} .. {windows[-1][1]:%H:%M} UTC" + (
        " (open window, so far)" if any(r.details.get("partial") for r in newest) else ""
    )
    console.print(table(newest, title))


def _json(  # noqa: PLR0917 - one call site, the command's parsed arguments in order
    model: str,
    since: datetime,
    until: datetime,
    chosen: Sequence[DetectorResult],
    alerts: Sequence[DetectorResult],
    runs: Sequence[RunHealth],
) -> str:
    from modeltap.codec import dumps  # noqa: PLC0415
    from monitor.render import as_dict  # noqa: PLC0415

    def timed(result: DetectorResult) -> dict[str, Any]:
        return {
            "window_start": result.window_start.isoformat(),
            "window_end": result.window_end.isoformat(),
            **as_dict(result),
        }

    document = {
        "model": model,
        "start": since.isoformat(),
        "end": until.isoformat(),
        "alerts": [timed(r) for r in alerts],
        "results": [timed(r) for r in chosen],
        "runs": [
            {
                "detector": run.detector,
                "last_started_at": run.last_started_at.isoformat(),
                "last_status": run.last_status,
                "last_error": run.last_error,
                "consecutive_failures": run.consecutive_failures,
            }
            for run in runs
        ],
    }
    return json.dumps(json.loads(dumps(document)), indent=2)
