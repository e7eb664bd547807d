"""``monitor detect``: the detector daemon, or one pass over everything with ``--once``."""

from __future__ import annotations

import logging
import os
import socket
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.console import Console

from modeltap.errors import ConfigError, InputError
from modeltap.logs import setup_logging
from modeltap.schema import FAMILIES
from monitor.commands import Settings, open_store, pass_settings

if TYPE_CHECKING:
    from modeltap.config import MonitorConfig
    from modeltap.schema import DetectorResult
    from modeltap.store import Store


@click.command()
@click.option("--once", is_flag=True, help="Run every detector now, print the results, exit.")
@click.option("--model", "models", multiple=True, help="Only this model (repeatable).")
@click.option(
    "--detector",
    "detectors",
    multiple=True,
    type=click.Choice(FAMILIES),
    help="Only this detector (repeatable).",
)
@click.option("--at", "at", help="With --once: compute as of this time (ISO 8601) instead of now.")
@click.option("--all", "show_all", is_flag=True, help="With --once: print every result.")
@click.option(
    "--metrics-listen", help="Address of the exporter's /metrics [exporter.listen, 0.0.0.0:9110]."
)
@pass_settings
def detect(
    settings: Settings,
    *,
    once: bool,
    models: tuple[str, ...],
    detectors: tuple[str, ...],
    at: str | None,
    show_all: bool,
    metrics_listen: str | None,
) -> None:
    """Run the detectors on a schedule (or once), storing results in detector_results.

    Each (model, detector) pair is a job that runs every detectors.interval over the
    windows that are due; replicas on PostgreSQL share the jobs. SIGTERM stops warmly
    (running jobs finish), a second SIGTERM at once. With --once every job runs now,
    a table of the newest complete window is printed, and the exit code is 1 if a
    detector failed. The daemon serves the exporter's /metrics on exporter.listen.

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
    from modeltap.files import parse_moment  # noqa: PLC0415
    from monitor.render import print_outcomes  # noqa: PLC0415

    overrides = {"exporter": {"listen": metrics_listen}} if metrics_listen else None
    config = settings.config(overrides)
    if not config.models:
        raise ConfigError(
            "no models are configured; add a models: section (see config.example.yaml)"
        )
    if at is not None and not once:
        raise InputError("--at only applies with --once")
    names = list(dict.fromkeys(models)) or [model.name for model in config.models]
    chosen = [ModelSettings.from_config(config, name) for name in names]
    # Each running job holds one connection for its lock and uses another for its work.
    store = open_store(config, connections=2 * config.detectors.workers)
    runner = Runner(store, chosen, owner=f"{socket.gethostname()}:{os.getpid()}")
    jobs = [
        (model, detector)
        for model, detector in runner.jobs()
        if not detectors or detector in detectors
    ]
    try:
        if once:
            now = system_clock()
            if at is not None:
                asked = parse_moment(at, "--at")
                if asked > now:
                    # Windows not over yet would be computed from part of their traffic and
                    # stored as complete, and never recomputed.
                    raise InputError(
                        f"--at {asked.isoformat()} is in the future (now is "
                        f"{now.isoformat(timespec='seconds')}); give a time already past"
                    )
                now = asked
            outcomes = runner.run_all(now, jobs)
            console = Console(width=None if sys.stdout.isatty() else 160)
            # Windows already computed are not due again; show what the store holds for them.
            lookback = max(config.detectors.window, config.detectors.label_horizon)

            def stored(model: str) -> list[DetectorResult]:
                return store.results_between(model, now - lookback - config.detectors.window, now)

            print_outcomes(outcomes, console, show_all=show_all, stored=stored)
            if any(outcome.status == "error" for outcome in outcomes):
                sys.exit(1)
            return
        setup_logging()
        # APScheduler announces every job it runs; our own line per run says more.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        stopper = Stopper(force_exit)
        stopper.install()
        serve_metrics(config, store)
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


def serve_metrics(config: MonitorConfig, store: Store) -> None:
    """The exporter's /metrics on exporter.listen, from a daemon thread."""
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    from exporters.endpoint import register_exporter, serve_registry  # noqa: PLC0415

    registry = CollectorRegistry()
    register_exporter(registry, store, config, lambda: datetime.now(UTC))
    try:
        serve_registry(config.exporter.listen, registry)
    except OSError as error:
        raise ConfigError(
            f"exporter.listen: cannot serve /metrics on {config.exporter.listen} ({error}); "
            "choose another address with --metrics-listen"
        ) from None
    logging.getLogger("modeltap.detect").info("metrics on %s/metrics", config.exporter.listen)
