"""``monitor detect``: every (model, detector) job on an APScheduler interval, until stopped.

Each job runs every ``detectors.interval``, one instance at a time (a run that overruns
its interval is not doubled up), with missed runs coalesced into one and a misfire grace
of one interval. The runner takes the job's advisory lock, so replicas share the work. The
first SIGTERM or SIGINT is a warm stop: no new runs start, the running ones finish. A
second one stops at once; half-computed windows are simply computed again next time.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from detectors.runner import JobOutcome, Runner
from modeltap.schema import DRIFT_TESTS, DetectorResult

log = logging.getLogger("modeltap.detect")

Clock = Callable[[], datetime]


class Stopper:
    """Signal handling: the first signal asks for a warm stop, the second forces one.

    >>> stopper = Stopper(force=lambda: print("forced"))
    >>> stopper.signal(15), stopper.stopping.is_set()
    ('warm', True)
    >>> stopper.signal(15)
    forced
    'forced'
    """

    def __init__(self, force: Callable[[], None]) -> None:
        self.stopping = threading.Event()
        self._force = force

    def signal(self, signum: int) -> str:
        # Handlers run in the main thread, and a second signal can arrive while the first
        # handler is still logging: no lock here (it would deadlock), and the event is set
        # before anything else so the nested call sees it.
        if self.stopping.is_set():
            log.error("signal %s again: stopping now", signum)
            self._force()
            return "forced"
        self.stopping.set()
        log.warning("signal %s: warm stop, finishing the running jobs (again to stop now)", signum)
        return "warm"

    def install(self) -> None:
        """Handle SIGTERM and SIGINT in this (the main) thread."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            self.signal(signum)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def force_exit() -> None:
    """Leave without waiting for workers; PostgreSQL frees their job locks with the sessions."""
    # No logging.shutdown(): the handler may be interrupting a log call that holds its lock.
    os._exit(1)


def log_outcome(outcome: JobOutcome) -> None:
    if outcome.status == "error":
        log.error(
            "%s/%s failed after %.0f ms: %s",
            outcome.model,
            outcome.detector,
            outcome.duration_ms,
            outcome.error,
        )
    elif outcome.status == "ok":
        log.info(
            "%s/%s: %d window(s), %d result(s) in %.0f ms",
            outcome.model,
            outcome.detector,
            len(outcome.windows),
            len(outcome.results),
            outcome.duration_ms,
        )
    else:
        log.debug("%s/%s is owned by another replica right now", outcome.model, outcome.detector)
    for result in outcome.results:
        # Verdicts only: the raw drift tests behind a feature's verdict would repeat it.
        if result.alert and result.detector not in DRIFT_TESTS:
            log.warning("ALERT %s", describe_alert(result))


def describe_alert(result: DetectorResult) -> str:
    """One line an on-call engineer can act on: what, where, how far past which threshold.

    >>> from datetime import datetime, UTC
    >>> t = datetime(2026, 11, 25, 12, tzinfo=UTC)
    >>> print(describe_alert(DetectorResult(
    ...     model="churn", version="", detector="accuracy", window_start=t,
    ...     window_end=t.replace(hour=13), computed_at=t, status="ok", score=0.61,
    ...     threshold=0.8, direction="lower", alert=True, current_size=40)))
    churn accuracy: 0.61 (alert when lower than 0.8), window 2026-11-25 12:00 .. 13:00 UTC, n=40
    """
    where = " ".join(part for part in (result.version, result.detector, result.feature) if part)
    segment = f" [segment {result.segment}]" if result.segment else ""
    score = "-" if result.score is None else f"{result.score:.4g}"
    limit = (
        ""
        if result.threshold is None
        else (
            f" ({'drift' if result.detector.endswith('_drift') else 'alert'} when "
            f"{result.direction} than {result.threshold:.4g})"
        )
    )
    return (
        f"{result.model} {where}{segment}: {score}{limit}, window "
        f"{result.window_start:%Y-%m-%d %H:%M} .. {result.window_end:%H:%M} UTC, "
        f"n={result.current_size if result.current_size is not None else '-'}"
    )


def build_scheduler(
    runner: Runner,
    jobs: Iterable[tuple[str, str]],
    *,
    interval: timedelta,
    workers: int,
    clock: Clock,
    on_outcome: Callable[[JobOutcome], None] = log_outcome,
) -> Any:
    """A scheduler (not started) with one interval job per (model, detector), all due now."""
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": max(1, int(interval.total_seconds())),
        },
        timezone=UTC,
    )
    first = clock()
    for model, detector in jobs:
        scheduler.add_job(
            _run_job,
            trigger=IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
            args=(runner, model, detector, clock, on_outcome),
            id=f"{model}/{detector}",
            name=f"{model}/{detector}",
            next_run_time=first,
        )
    return scheduler


def _run_job(
    runner: Runner,
    model: str,
    detector: str,
    clock: Clock,
    on_outcome: Callable[[JobOutcome], None],
) -> None:
    try:
        outcome = runner.run(model, detector, clock())
    except Exception:  # the store itself failed (the runner records everything else)
        log.exception("%s/%s could not run", model, detector)
        return
    on_outcome(outcome)


def serve(scheduler: Any, stopper: Stopper, *, poll: float = 0.5) -> None:
    """Run ``scheduler`` until ``stopper`` says stop, then let the running jobs finish."""
    scheduler.start()
    log.info("detectors running: %d job(s)", len(scheduler.get_jobs()))
    while not stopper.stopping.wait(poll):
        pass
    scheduler.shutdown(wait=True)
    log.info("detectors stopped")


def system_clock() -> datetime:
    """The wall clock, in UTC; only the daemon's edge reads it."""
    return datetime.now(UTC)
