"""``monitor detect``: the detector daemon, or one pass over everything with ``--once``."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click
from rich.console import Console

from detectors.families import DETECTORS
from monitor.commands import Settings, open_store, pass_settings
from monitor.errors import ConfigError, InputError

if TYPE_CHECKING:
    from detectors.runner import JobOutcome
    from monitor.schema import DetectorResult

# Raw tests behind each feature's drift flag: in the database and --all, not the summary.
RAW_TESTS = frozenset({"ks", "psi", "chisquare", "z", "jensenshannon", "wasserstein"})
ORDER = {name: index for index, name in enumerate(DETECTORS)}


@click.command()
@click.option("--once", is_flag=True, help="Run every detector now, print the results, exit.")
@click.option("--model", "models", multiple=True, help="Only this model (repeatable).")
@click.option(
    "--detector",
    "detectors",
    multiple=True,
    type=click.Choice(DETECTORS),
    help="Only this detector (repeatable).",
)
@click.option("--at", "at", help="With --once: compute as of this time (ISO 8601) instead of now.")
@click.option("--all", "show_all", is_flag=True, help="With --once: print every result.")
@pass_settings
def detect(
    settings: Settings,
    *,
    once: bool,
    models: tuple[str, ...],
    detectors: tuple[str, ...],
    at: str | None,
    show_all: bool,
) -> None:
    """Run the detectors on a schedule (or once), storing results in detector_results.

    Each (model, detector) pair is a job that runs every detectors.interval over the
    windows that are due; replicas on PostgreSQL share the jobs. SIGTERM stops warmly
    (running jobs finish), a second SIGTERM at once. With --once every job runs now,
    a table of the newest complete window is printed, and the exit code is 1 if a
    detector failed.

    \b
    Examples:
      monitor --config modeltap.yaml detect
      monitor detect --once --model churn
    """
    # The statistics pull in scipy and pandas: imported here, not for every `monitor --help`.
    from detectors.daemon import (  # noqa: PLC0415
        Stopper,
        build_scheduler,
        force_exit,
        serve,
        system_clock,
    )
    from detectors.runner import Runner  # noqa: PLC0415
    from detectors.settings import ModelSettings  # noqa: PLC0415
    from monitor.tabular import parse_moment  # noqa: PLC0415

    config = settings.config()
    if not config.models:
        raise ConfigError(
            "no models are configured; add a models: section (see config.example.yaml)"
        )
    if at is not None and not once:
        raise InputError("--at only applies with --once")
    names = list(dict.fromkeys(models)) or [model.name for model in config.models]
    chosen = [ModelSettings.from_config(config, name) for name in names]
    store = open_store(config)
    runner = Runner(store, chosen, owner=f"{socket.gethostname()}:{os.getpid()}")
    jobs = [
        (model, detector)
        for model, detector in runner.jobs()
        if not detectors or detector in detectors
    ]
    try:
        if once:
            now = parse_moment(at, "--at") if at else system_clock()
            outcomes = runner.run_all(now, jobs)
            _print(outcomes, show_all, Console(width=None if sys.stdout.isatty() else 160))
            if any(outcome.status == "error" for outcome in outcomes):
                sys.exit(1)
            return
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        stopper = Stopper(force_exit)
        stopper.install()
        scheduler = build_scheduler(
            runner,
            jobs,
            interval=config.detectors.interval,
            workers=config.detectors.workers,
            clock=system_clock,
        )
        serve(scheduler, stopper)
    finally:
        store.close()


def _print(outcomes: Sequence[JobOutcome], show_all: bool, console: Console) -> None:
    from monitor.resultview import table  # noqa: PLC0415

    for model in dict.fromkeys(outcome.model for outcome in outcomes):
        mine = [outcome for outcome in outcomes if outcome.model == model]
        for outcome in mine:
            windows = outcome.windows
            span = (
                f"{windows[0].start:%Y-%m-%d %H:%M} .. {windows[-1].end:%H:%M}" if windows else "-"
            )
            state = {
                "ok": "[green]ok[/]",
                "error": "[red]failed[/]",
                "skipped": "[dim]owned elsewhere[/]",
            }
            console.print(
                f"{model}/{outcome.detector}: {state[outcome.status]}, {len(windows)} window(s) "
                f"{span}, {len(outcome.results)} result(s), {outcome.duration_ms:.0f} ms"
                + (f"\n  [red]{outcome.error}[/]" if outcome.error else "")
            )
        results = [result for outcome in mine for result in outcome.results]
        newest = _newest_complete(results)
        if newest is None:
            console.print(f"{model}: nothing computed")
            continue
        shown = sorted(
            (
                r
                for r in results
                if (r.window_start, r.window_end) == newest and (show_all or _summary(r))
            ),
            key=lambda r: (
                r.version,
                ORDER.get(_family(r.detector), 9),
                r.detector,
                r.feature,
                r.segment,
            ),
        )
        partial = any(r.details.get("partial") for r in shown)
        title = (
            f"{model}: {newest[0]:%Y-%m-%d %H:%M} .. {newest[1]:%H:%M} UTC"
            f"{' (open window, so far)' if partial else ''}"
            f"{'' if show_all else ' (summary; --all for every test, segment and feature)'}"
        )
        console.print(table(shown, title))


def _newest_complete(results: Sequence[DetectorResult]) -> tuple[object, object] | None:
    complete = [(r.window_start, r.window_end) for r in results if not r.details.get("partial")]
    every = [(r.window_start, r.window_end) for r in results]
    pool = complete or every
    return max(pool) if pool else None


def _summary(result: DetectorResult) -> bool:
    if result.segment or result.detector in RAW_TESTS:
        return False
    if result.detector in (
        "missing_ratio",
        "type_violation_share",
        "out_of_range_share",
        "unseen_category_share",
    ):
        return result.alert or bool(result.score)
    return True


def _family(detector: str) -> str:
    if detector.startswith("ab_"):
        return "ab"
    if detector.startswith(("latency", "error_rate", "throughput")):
        return "operations"
    if detector.endswith("_drift") or detector in RAW_TESTS:
        return "drift"
    if detector in (
        "missing_ratio",
        "type_violation_share",
        "out_of_range_share",
        "unseen_category_share",
    ):
        return "quality"
    return "performance"
