"""``monitor report``: the HTML report of one model over a range, from stored results."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.commands import Settings, open_store, pass_settings


@click.command()
@click.option("--model", required=True, help="The configured model.")
@click.option("--start", required=True, help="Start of the range (ISO 8601 with a timezone).")
@click.option("--end", required=True, help="End of the range (ISO 8601 with a timezone).")
@click.option(
    "-o",
    "--output",
    "output",
    default="report.html",
    show_default=True,
    type=click.Path(path_type=Path, dir_okay=False),
)
@pass_settings
def report(settings: Settings, *, model: str, start: str, end: str, output: Path) -> None:
    """Write one self-contained HTML file that opens offline: what alerted and when, drift
    per feature, reference against current for drifted features, data quality, performance
    with label coverage, latency and errors, and the A/B comparison.

    Built from detector_results (run `monitor detect` or `monitor backfill` first), so its
    size follows windows and features, not traffic.

    \b
    Example:
      monitor report --model churn --start 2026-11-01T00:00Z --end 2026-12-01T00:00Z -o nov.html
    """
    from detectors.settings import ModelSettings  # noqa: PLC0415 - statistics off `--help`
    from modeltap.errors import InputError  # noqa: PLC0415
    from modeltap.files import parse_moment  # noqa: PLC0415
    from monitor.report import write_report  # noqa: PLC0415

    config = settings.config()
    model_settings = ModelSettings.from_config(config, model)
    first, last = parse_moment(start, "--start"), parse_moment(end, "--end")
    if last <= first:
        raise InputError("--end must come after --start")
    store = open_store(config)
    try:
        size = write_report(store, model_settings, first, last, output)
    finally:
        store.close()
    click.echo(f"report: {output} ({size / 1024:,.0f} KiB)")
