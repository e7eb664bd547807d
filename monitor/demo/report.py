"""The demo's last step: the HTML report of everything it computed, and where to look next."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from rich.console import Console

from detectors.settings import ModelSettings
from exporters.openmetrics import write_openmetrics
from modeltap.store import SqlStore
from monitor.demo.detectors import demo_config
from monitor.report import write_report


def finish(
    store: SqlStore,
    start: datetime,
    end: datetime,
    *,
    hours: int,
    directory: Path,
    console: Console,
) -> tuple[Path, Path]:
    """Write ``report.html`` (and the history as OpenMetrics) into ``directory``; say where.
    Returns both paths."""
    settings = ModelSettings.from_config(demo_config(hours), "churn")
    report = directory / "report.html"
    size = write_report(store, settings, start, end, report)
    history = directory / "history.om"
    series = write_openmetrics(store.results_between("churn", start, end), history)
    console.print(
        f"\n[bold]report[/]: {report.resolve().as_uri()} ({size / 1024:,.0f} KiB, opens offline)"
    )
    console.print(
        f"history for Prometheus: {history} ({series} series; "
        f"promtool tsdb create-blocks-from openmetrics {history} <prometheus data dir>)"
    )
    console.print(
        "metrics: `monitor serve` serves them on http://127.0.0.1:8001/metrics and "
        "`monitor detect` on http://127.0.0.1:9110/metrics (with the demo's database as "
        f"storage.url=sqlite:///{directory / 'demo.db'})"
    )
    return report, history
