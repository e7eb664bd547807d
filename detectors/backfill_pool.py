"""Running a backfill: windows computed in this process or spread over worker processes,
results saved here as each window comes back, and a stop that waits for the windows in hand.

Workers only read and compute; the parent alone writes, so SQLite's one writer is never
contended and a window is saved whole or not at all. A worker rebuilds its source from a
picklable ``Job`` (the configuration, the file) and the URL of the parent's own store, not
the configuration's ``storage.url`` (a caller may have opened another); a file that had to
be streamed into a scratch dataset is streamed once, by the parent, and shared.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from detectors import backfill
from detectors.backfill import WindowSource
from detectors.history import Columns, FileSource
from detectors.label_table import LabelTable
from detectors.profile import Profile
from detectors.settings import ModelSettings
from detectors.windows import Window
from modeltap.config import MonitorConfig
from modeltap.schema import DetectorResult
from modeltap.store import SqlStore, Store, open_store

Results = dict[str, list[DetectorResult]]


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to compute windows; picklable."""

    config: MonitorConfig
    model: str
    size: timedelta
    now: datetime
    detectors: tuple[str, ...]
    version: str | None = None
    file: Path | None = None
    columns: Columns = field(default_factory=Columns)
    labels: LabelTable | None = None
    scratch: Path | None = None  # the parent's scratch dataset of a streamed file
    # Profiles as JSON, per version; None: each version's stored reference.
    profiles: Mapping[str, Any] | None = None

    def settings(self) -> ModelSettings:
        return replace(ModelSettings.from_config(self.config, self.model), window=self.size)


@dataclass
class Summary:
    """What a run did, for the table at the end."""

    windows: int = 0
    skipped: int = 0
    rows: int = 0
    requests: int = 0
    results: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    stopped: bool = False

    def add(self, results: Results, counts: tuple[int, int]) -> None:
        self.windows += 1
        self.requests += counts[0]
        self.rows += counts[1]
        for detector, found in results.items():
            self.results[detector] += len(found)
            self.alerts[detector] += sum(1 for result in found if result.alert)


class Computer:
    """Computes windows of one job from its source; one per process."""

    def __init__(
        self, job: Job, source: WindowSource, store: Store | None, *, processes: int = 1
    ) -> None:
        self._job = job
        settings = job.settings()
        # N processes each scoring features on every core would oversubscribe them N times.
        self._settings = replace(settings, workers=max(1, settings.workers // processes))
        self._source = source
        self._store = store
        self._profiles: dict[str, Profile | None] = {}

    def __call__(
        self, window: Window, expected: int = 0
    ) -> tuple[Window, Results, tuple[int, int]]:
        data = self._source.read(window, expected).only(self._job.version)
        missing = [version for version in data.rows if version not in self._profiles]
        if missing:
            self._profiles |= self._profiles_for(missing)
        found = backfill.compute(
            self._settings,
            window,
            data,
            self._profiles,
            now=self._job.now,
            detectors=self._job.detectors,
        )
        return window, found, data.counts

    def _profiles_for(self, versions: Sequence[str]) -> dict[str, Profile | None]:
        if self._job.profiles is not None:
            fitted = Profile.from_json(self._job.profiles[""])
            return dict.fromkeys(versions, fitted)
        assert self._store is not None
        return backfill.stored_profiles(self._store, self._settings.model, versions)


def open_source(job: Job, store: Store) -> WindowSource:
    """The job's source: its file (sharing the parent's scratch dataset), or the store."""
    settings = job.settings()
    if job.file is None:
        return backfill.StoreSource(store, settings)
    source = FileSource(job.file, settings, job.columns, labels=job.labels)
    if job.scratch is not None:
        source.attach(job.scratch, job.size)
    return source


_worker: Computer | None = None


def _start_worker(job: Job, store_url: str, processes: int) -> None:
    # Ctrl-C reaches the whole process group: the parent decides when to stop, not workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _worker  # noqa: PLW0603 - one computer per worker process, built once
    store = worker_store(store_url)
    _worker = Computer(job, open_source(job, store), store, processes=processes)


def worker_store(url: str) -> SqlStore:
    """A worker's store: one connection, and no parallel plans (the workers fill the cores)."""
    return open_store(url, pool_size=1, parallel_queries=False)


def _compute(window: Window, expected: int) -> tuple[Window, Results, tuple[int, int]]:
    assert _worker is not None
    return _worker(window, expected)


def store_url(store: Store) -> str:
    """The URL a worker reopens ``store`` with (password included: it goes to a child)."""
    if not isinstance(store, SqlStore):
        raise TypeError(f"{type(store).__name__} has no URL for worker processes to reopen")
    url: str = store.engine.url.render_as_string(hide_password=False)
    return url


def computed(
    job: Job,
    computer: Computer,
    windows: Sequence[Window],
    workers: int,
    stop: Callable[[], bool],
    *,
    url: str | None = None,
    observed: Mapping[datetime, tuple[int, int]],
) -> Iterator[tuple[Window, Results, tuple[int, int]]]:
    """Each window's results as they are ready (in order when ``workers`` is 1); after
    ``stop()`` turns true no new window starts, and those in hand are still given. Worker
    processes read the store at ``url``; ``observed`` holds the windows' event counts, so
    each is read in the way its size suits."""

    def expected(window: Window) -> int:
        return observed.get(window.start, (0, 0))[1]

    if workers <= 1 or len(windows) <= 1:
        for window in windows:
            if stop():
                return
            yield computer(window, expected(window))
        return
    if url is None:
        raise ValueError("worker processes need the URL of the store to read")
    context = get_context("spawn")  # no inherited connections or threads in the workers
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(job, url, workers)
    ) as pool:
        waiting = iter(windows)
        running: set[Future[tuple[Window, Results, tuple[int, int]]]] = set()
        # Two windows per worker in flight keep every worker busy while the parent saves.
        for window in _take(waiting, 2 * workers):
            running.add(pool.submit(_compute, window, expected(window)))
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
                if not stop():
                    for window in _take(waiting, 1):
                        running.add(pool.submit(_compute, window, expected(window)))


def _take(items: Iterator[Window], count: int) -> Iterable[Window]:
    for _ in range(count):
        item = next(items, None)
        if item is None:
            return
        yield item


def run(
    job: Job,
    store: Store,
    source: WindowSource,
    windows: Sequence[Window],
    observed: Mapping[datetime, tuple[int, int]],
    *,
    workers: int = 1,
    stop: Callable[[], bool] = lambda: False,
    progress: Callable[[Window, tuple[int, int]], None] = lambda window, counts: None,
    timer: Callable[[], float] = time.perf_counter,
) -> Summary:
    """Compute and save ``windows``; each window's results are saved as soon as they arrive,
    recorded with its ``observed`` event counts (what a later run compares to resume)."""
    settings = job.settings()
    summary = Summary()
    started = timer()
    computer = Computer(job, source, store)
    # The workers read the store this process writes to, whatever the configuration says.
    url = store_url(store) if workers > 1 else None
    found = computed(job, computer, windows, workers, stop, url=url, observed=observed)
    for window, results, counts in found:
        seen = observed.get(window.start, (0, 0))
        backfill.save(store, settings, window, results, counts=seen, now=job.now)
        summary.add(results, counts)
        progress(window, counts)
    summary.stopped = summary.windows < len(windows)
    summary.seconds = timer() - started
    return summary
