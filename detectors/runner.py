"""Runs detector jobs against the store: the one place in ``detectors/`` that does I/O.

A job is one detector family for one model. A run owns the job (an advisory lock across
replicas), works out which windows to compute from what is recorded and the ``now`` it is
given, computes them oldest first, saves each window's results with its record in one
transaction, and records the run (ok or error, duration). Nothing here reads a clock: the
daemon, ``--once`` and a backfill pass ``now`` in.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from detectors.emit import Scope
from detectors.evaluate import evaluate
from detectors.memory import map_large_blocks, return_freed_memory
from detectors.profile import Profile
from detectors.reads import Reads
from detectors.rows import Requests, Rows
from detectors.settings import ModelSettings
from detectors.windows import (
    Window,
    changed_windows,
    due_windows,
    open_window,
    window_at,
    windows_containing,
)
from modeltap.schema import FAMILIES, DetectorResult, DetectorRun, WindowRecord, utc
from modeltap.store import Store

READS_REQUESTS = frozenset({"operations", "ab"})
READS_ROWS = frozenset({"quality", "drift", "performance", "ab", "estimation", "multivariate"})
# Estimation reads labels for the realized figures beside its estimates.
READS_LABELS = frozenset({"performance", "ab", "estimation"})
READS_PROFILE = frozenset({"quality", "drift", "estimation", "multivariate"})


@dataclass(frozen=True, slots=True)
class Planned:
    """A window to compute; ``partial`` for the one still open."""

    window: Window
    partial: bool = False
    counts: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class JobOutcome:
    """What one run of one job did."""

    model: str
    detector: str
    status: Literal["ok", "error", "skipped"]
    windows: tuple[Window, ...] = ()
    results: list[DetectorResult] = field(default_factory=list)
    duration_ms: float = 0.0
    error: str | None = None


class Runner:
    """Computes due windows for configured models; safe to run as several replicas.

    >>> from modeltap.store import SqlStore
    >>> runner = Runner(SqlStore.open("sqlite:///:memory:", migrate=True), [], owner="doc")
    >>> runner.jobs()
    []
    """

    def __init__(
        self,
        store: Store,
        models: Sequence[ModelSettings],
        *,
        owner: str,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        # A process that runs detectors gives freed window-sized blocks back (see memory).
        map_large_blocks()
        self._store = store
        self._models = {settings.model: settings for settings in models}
        self._owner = owner
        self._timer = timer

    def jobs(self) -> list[tuple[str, str]]:
        """Every (model, detector) job."""
        return [(model, detector) for model in self._models for detector in FAMILIES]

    def run_all(
        self, now: datetime, jobs: Iterable[tuple[str, str]] | None = None
    ) -> list[JobOutcome]:
        """Run jobs one after the other, sharing reads; a failing job does not stop the rest."""
        readers = max((settings.workers for settings in self._models.values()), default=1)
        reads = Reads(self._store, shared=True, readers=readers)
        chosen = jobs or self.jobs()
        return [self.run(model, detector, now, reads) for model, detector in chosen]

    def run(
        self, model: str, detector: str, now: datetime, reads: Reads | None = None
    ) -> JobOutcome:
        """Run one job for ``now`` unless another replica owns it at the moment."""
        settings = self._models[model]
        now = utc(now)
        reads = reads or Reads(self._store, readers=settings.workers)
        with self._store.detector_lock(model, detector) as owned:
            if not owned:
                return JobOutcome(model, detector, "skipped")
            started = self._timer()
            done: list[Window] = []
            results: list[DetectorResult] = []
            error: str | None = None
            trace: str | None = None
            try:
                for planned in self.plan(settings, detector, now, reads):
                    computed = self.compute(settings, detector, planned, now, reads)
                    record = self._record(settings, detector, planned, now)
                    self._store.save_window(computed, [record])
                    done.append(planned.window)
                    results += computed
            except Exception as failure:  # one failing job must not stop the others
                error = f"{type(failure).__name__}: {failure}"
                trace = _clip(f"{error}\n{traceback.format_exc()}")
            elapsed = (self._timer() - started) * 1000
            self._store.record_run(
                DetectorRun(
                    model=model,
                    detector=detector,
                    started_at=now,
                    duration_ms=elapsed,
                    status="ok" if error is None else "error",
                    as_of=now,
                    windows=len(done),
                    results=len(results),
                    owner=self._owner,
                    error=trace,
                )
            )
            status: Literal["ok", "error"] = "ok" if error is None else "error"
            return JobOutcome(model, detector, status, tuple(done), results, elapsed, error)

    def plan(
        self, settings: ModelSettings, detector: str, now: datetime, reads: Reads | None = None
    ) -> list[Planned]:
        """Due windows, windows changed by late events or labels, then the open window."""
        reads = reads or Reads(self._store)
        size, horizon = settings.window, settings.label_horizon
        earliest = window_at(now - horizon, size).start
        records = self._store.window_records(settings.model, detector, earliest)
        recorded = {
            Window(r.window_start, r.window_end): (r.requests, r.predictions)
            for r in records
            if not r.partial
        }
        counts = reads.event_counts(settings.model, earliest, now, size)
        observed = {Window(start, start + size): pair for start, pair in counts.items()}
        last_done = max((window.end for window in recorded), default=None)
        due = due_windows(last_done, now, size, horizon)
        if last_done is None:
            # A first start computes from the first window with traffic, not empty history.
            first = min(observed, default=None)
            due = [window for window in due if first is not None and window >= first]
        again: set[Window] = set()
        if last_done is not None:
            settled = {w: c for w, c in observed.items() if w.end <= last_done}
            again |= set(changed_windows(recorded, settled, now, horizon))
            if detector in READS_LABELS:
                again |= self._labelled(settings, detector, now, earliest, last_done)
        chosen = sorted(set(due) | again)
        planned = [Planned(window, False, observed.get(window, (0, 0))) for window in chosen]
        current = open_window(now, size)
        if current is not None:
            planned.append(Planned(current, True, observed.get(current, (0, 0))))
        return planned

    def _labelled(
        self,
        settings: ModelSettings,
        detector: str,
        now: datetime,
        earliest: datetime,
        last_done: datetime,
    ) -> set[Window]:
        since = self._store.last_ok_as_of(settings.model, detector)
        if since is None:
            return set()
        starts = self._store.labelled_windows(
            settings.model, since=since, until=now, earliest=earliest, window=settings.window
        )
        reopened = windows_containing(starts, settings.window, now, settings.label_horizon)
        return {window for window in reopened if window.end <= last_done}

    def compute(
        self,
        settings: ModelSettings,
        detector: str,
        planned: Planned,
        now: datetime,
        reads: Reads | None = None,
    ) -> list[DetectorResult]:
        """One detector's results for one window, read from the store."""
        reads = reads or Reads(self._store, readers=settings.workers)
        window = planned.window
        end = min(window.end, now)
        requests: dict[str, Requests] = {}
        rows: dict[str, Rows] = {}
        if detector in READS_REQUESTS:
            requests = reads.requests(settings.model, window.start, end)
        if detector in READS_ROWS:
            rows = reads.versions(
                settings,
                window.start,
                end,
                features=_features(settings, detector),
                labels=detector in READS_LABELS,
                violations=detector == "quality",
                expected=planned.counts[1],
            )
        profiles: dict[str, Profile | None] = {}
        if detector in READS_PROFILE:
            profiles = {version: self._profile(settings.model, version) for version in rows}
        scope = Scope(settings.model, "", window, now, partial=planned.partial)
        results = evaluate(
            settings,
            scope,
            detectors=[detector],
            requests=requests,
            rows=rows,
            profiles=profiles,
            seconds=(end - window.start).total_seconds(),
        )
        # What the detector's pool threads freed, back to the system before the next one
        # allocates (they free into arenas of their own, which the next may not reuse).
        return_freed_memory()
        return results

    def _profile(self, model: str, version: str) -> Profile | None:
        """The version's own reference if one was fitted, else the model's."""
        stored = self._store.get_reference(model, version) or self._store.get_reference(model, "")
        return Profile.from_json(stored.profile) if stored is not None else None

    def _record(
        self, settings: ModelSettings, detector: str, planned: Planned, now: datetime
    ) -> WindowRecord:
        return WindowRecord(
            model=settings.model,
            detector=detector,
            window_start=planned.window.start,
            window_end=planned.window.end,
            computed_at=now,
            requests=planned.counts[0],
            predictions=planned.counts[1],
            partial=planned.partial,
            owner=self._owner,
        )


def _features(settings: ModelSettings, detector: str) -> list[str]:
    """The features a detector reads: all for those scored against the reference profile,
    the segment's for performance."""
    if detector in READS_PROFILE:
        return list(settings.kinds)
    if detector == "performance" and settings.segment_by is not None:
        return [settings.segment_by]
    return []


def _clip(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
