"""The live detectors over a past range: which windows, what each reads, and its results.

A backfill cuts the range with the live scheduler's own function (``due_windows``) and
scores every window through ``evaluate``, exactly as ``Runner.compute`` does, reading each
window once for every detector as ``monitor detect --once`` does. Only where the rows come
from differs: the store (``StoreSource``) or a file of past predictions
(``detectors.history``). Every result is computed as of the range's end, so running the same
backfill twice writes the same rows, and a window recorded by an earlier run with the same
counts is done: a stopped backfill resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from detectors.emit import Scope
from detectors.evaluate import evaluate
from detectors.profile import Profile
from detectors.reads import Reads
from detectors.rows import Requests, Rows
from detectors.runner import READS_PROFILE, READS_REQUESTS, READS_ROWS
from detectors.settings import ModelSettings
from detectors.windows import Window, due_windows, window_at
from modeltap.errors import InputError
from modeltap.schema import FAMILIES, DetectorResult, WindowRecord, utc
from modeltap.store import Store

OWNER = "backfill"


@dataclass(frozen=True)
class WindowData:
    """One window's data by version: requests, and rows carrying quality's violation counts."""

    requests: Mapping[str, Requests] = field(default_factory=dict)
    rows: Mapping[str, Rows] = field(default_factory=dict)

    @property
    def counts(self) -> tuple[int, int]:
        """(requests, prediction rows), as ``detector_windows`` records them."""
        return (
            sum(len(item) for item in self.requests.values()),
            sum(len(item) for item in self.rows.values()),
        )

    def only(self, version: str | None) -> WindowData:
        if version is None:
            return self
        return WindowData(
            {v: r for v, r in self.requests.items() if v == version},
            {v: r for v, r in self.rows.items() if v == version},
        )


class WindowSource(Protocol):
    """Where a backfill's rows come from: the store, or a file of past predictions."""

    def event_counts(
        self, start: datetime, end: datetime, size: timedelta
    ) -> dict[datetime, tuple[int, int]]:
        """(requests, prediction rows) per window start in ``[start, end)``."""
        ...

    def read(self, window: Window, expected: int = 0) -> WindowData:
        """Everything every detector reads for ``window``, which holds about ``expected``
        prediction rows (its event count; 0 when not known)."""
        ...


def windows(start: datetime, end: datetime, size: timedelta) -> list[Window]:
    """The complete windows of ``[start, end)`` (``start`` widened to its window's start),
    cut by the live scheduler's ``due_windows``; an empty range is an InputError.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    >>> [w.start.hour for w in windows(t, t + timedelta(hours=2), timedelta(hours=1))]
    [10, 11]
    """
    start, end = utc(start), utc(end)
    first = window_at(start, size).start
    found = due_windows(first, end, size, end - first) if end > first else []
    if not found:
        raise InputError(
            f"{start.isoformat()} to {end.isoformat()} holds no complete {size} window; "
            "give an --end at least one window after --start"
        )
    return found


def as_of(found: Sequence[Window]) -> datetime:
    """The ``now`` every result of a backfill is computed at: the end of its last window."""
    return found[-1].end


def compute(
    settings: ModelSettings,
    window: Window,
    data: WindowData,
    profiles: Mapping[str, Profile | None],
    *,
    now: datetime,
    detectors: Collection[str] = FAMILIES,
) -> dict[str, list[DetectorResult]]:
    """Each detector's results for one complete window, as ``Runner.compute`` gives them."""
    scope = Scope(settings.model, "", window, now, partial=False)
    found: dict[str, list[DetectorResult]] = {}
    for detector in [name for name in FAMILIES if name in detectors]:
        found[detector] = evaluate(
            settings,
            scope,
            detectors=[detector],
            requests=data.requests if detector in READS_REQUESTS else {},
            rows=data.rows if detector in READS_ROWS else {},
            profiles=({v: profiles.get(v) for v in data.rows} if detector in READS_PROFILE else {}),
            seconds=window.size.total_seconds(),
        )
    return found


def stored_profiles(
    store: Store, model: str, versions: Collection[str]
) -> dict[str, Profile | None]:
    """Each version's own stored reference if one was fitted, else the model's (as live)."""
    model_wide = store.get_reference(model, "")
    profiles: dict[str, Profile | None] = {}
    for version in versions:
        stored = store.get_reference(model, version) or model_wide
        profiles[version] = Profile.from_json(stored.profile) if stored is not None else None
    return profiles


def record(
    settings: ModelSettings,
    detector: str,
    window: Window,
    *,
    counts: tuple[int, int],
    now: datetime,
) -> WindowRecord:
    return WindowRecord(
        model=settings.model,
        detector=detector,
        window_start=window.start,
        window_end=window.end,
        computed_at=now,
        requests=counts[0],
        predictions=counts[1],
        partial=False,
        owner=OWNER,
    )


def save(
    store: Store,
    settings: ModelSettings,
    window: Window,
    results: Mapping[str, list[DetectorResult]],
    *,
    counts: tuple[int, int],
    now: datetime,
) -> None:
    """Upsert every detector's results with their window records, in one transaction."""
    store.save_window(
        [result for found in results.values() for result in found],
        [record(settings, detector, window, counts=counts, now=now) for detector in results],
    )


def done(
    store: Store,
    settings: ModelSettings,
    detectors: Collection[str],
    found: Sequence[Window],
    *,
    counts: Mapping[datetime, tuple[int, int]],
    now: datetime,
) -> set[Window]:
    """Windows an earlier run of this backfill finished for every detector, on the same data."""
    finished: dict[Window, int] = {}
    for detector in detectors:
        for kept in store.window_records(settings.model, detector, found[0].start):
            window = Window(kept.window_start, kept.window_end)
            same = (kept.requests, kept.predictions) == counts.get(window.start, (0, 0))
            if kept.owner == OWNER and kept.computed_at == now and same and not kept.partial:
                finished[window] = finished.get(window, 0) + 1
    return {window for window, hits in finished.items() if hits == len(detectors)}


class StoreSource:
    """A window's data from the store, read once for every detector (a shared pass)."""

    def __init__(self, store: Store, settings: ModelSettings) -> None:
        self._store = store
        self._settings = settings
        # One window at a time: nothing is kept from one window to the next.
        self._budget = 1

    def event_counts(
        self, start: datetime, end: datetime, size: timedelta
    ) -> dict[datetime, tuple[int, int]]:
        return self._store.event_counts(self._settings.model, start, end, size)

    def read(self, window: Window, expected: int = 0) -> WindowData:
        reads = Reads(self._store, shared=True, budget=self._budget)
        model, start, end = self._settings.model, window.start, window.end
        requests = reads.requests(model, start, end)
        # The rows and quality's violation counts in one read (as ``detect --once`` reads).
        found = reads.versions(
            self._settings,
            start,
            end,
            features=self._settings.kinds,
            labels=True,
            violations=True,
            expected=expected,
        )
        return WindowData(requests, found)
