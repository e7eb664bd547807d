"""A window's data from the store, read once per pass when several detectors share it.

Each detector asks for what it needs: operations the serving rows, quality and drift every
feature, performance only the segment feature and labels, A/B only predictions and labels.
A scheduled job reads exactly that. A pass over every detector at the same ``now``
(``monitor detect --once``, a backfill) shares one read of everything per window instead,
so a window of a million rows leaves the database once rather than four times. What a pass
keeps is bounded (``budget`` rows, oldest dropped first): a catch-up over many windows reads
again rather than holding them all.

A large window's rows are read in time slices of about ``slice_rows`` rows, ``readers`` at a
time on their own connections: the database works on every core, and the client parses a
slice at a time. The slices are then joined and split by version a column at a time, each
step emptying what it takes from (``concat_frames``, ``rows_by_version``), so the window is
never held twice, as slices and joined or as one frame and again by version. A small window
is one read, as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from detectors.memory import return_freed_memory
from detectors.rows import (
    Requests,
    Rows,
    requests_from_frame,
    rows_by_version,
    rows_from_frame,
)
from detectors.settings import ModelSettings
from detectors.stats.reference import Kind
from modeltap.store import FEATURE_PREFIX, Store, concat_frames

if TYPE_CHECKING:
    import pandas as pd

Key = tuple[str, datetime, datetime]
Violations = dict[str, dict[str, int]]
# A window is read in at most this many slices: each slice joins the labels again.
MAX_SLICES = 16


class Reads:
    """Reads for one job (``shared=False``) or for a whole pass (``shared=True``)."""

    def __init__(
        self,
        store: Store,
        *,
        shared: bool = False,
        budget: int = 2_000_000,
        readers: int = 1,
        slice_rows: int = 250_000,
    ) -> None:
        self._store = store
        self._shared = shared
        self._budget = budget
        self._readers = max(readers, 1)
        self._slice_rows = max(slice_rows, 1)
        self._rows: OrderedDict[Key, Rows] = OrderedDict()
        self._versions: OrderedDict[Key, dict[str, Rows]] = OrderedDict()
        self._requests: OrderedDict[Key, dict[str, Requests]] = OrderedDict()
        self._violations: dict[Key, dict[str, dict[str, int]]] = {}
        self._counts: dict[tuple[str, datetime, datetime], dict[datetime, tuple[int, int]]] = {}

    def event_counts(
        self, model: str, start: datetime, end: datetime, size: timedelta
    ) -> dict[datetime, tuple[int, int]]:
        key = (model, start, end)
        if not self._shared or key not in self._counts:
            self._counts[key] = self._store.event_counts(model, start, end, size)
        return self._counts[key]

    def requests(self, model: str, start: datetime, end: datetime) -> dict[str, Requests]:
        """The window's requests of each version. A pass keeps them split, not whole: every
        job that reads them wants them by version, and splitting a kept whole again for
        each job held a million requests twice."""
        key = (model, start, end)
        found = self._requests.get(key)
        if found is None:
            found = requests_from_frame(self._store.read_serving(model, start, end)).by_version()
            if self._shared:
                self._keep(self._requests, key, found)
        return found

    def rows(
        self,
        settings: ModelSettings,
        start: datetime,
        end: datetime,
        *,
        features: Collection[str],
        labels: bool,
    ) -> Rows:
        """The rows with ``features`` (and labels); a shared pass reads everything once."""
        if self._shared:
            key = (settings.model, start, end)
            found = self._rows.get(key)
            if found is None:
                found = self._read(settings, start, end, dict(settings.kinds), labels=True)
                self._keep(self._rows, key, found)
            return found
        kinds = {name: kind for name, kind in settings.kinds.items() if name in features}
        return self._read(settings, start, end, kinds, labels=labels)

    def versions(
        self,
        settings: ModelSettings,
        start: datetime,
        end: datetime,
        *,
        features: Collection[str],
        labels: bool,
        violations: bool,
        expected: int = 0,
    ) -> dict[str, Rows]:
        """The rows of each version, with its type violations when asked (quality needs them).

        ``expected`` is about how many rows the window holds (its event count): above
        ``slice_rows`` the window is read in slices, several at a time. The violations are
        counted in the same read as the rows (``Store.read_rows_counted``).
        """
        key = (settings.model, start, end)
        found = self._versions.get(key) if self._shared else None
        counts = None
        if found is None:
            kinds = dict(settings.kinds)
            if not self._shared:
                kinds = {name: kind for name, kind in kinds.items() if name in features}
            wanted = labels or self._shared
            # The violations come with the rows when the rows hold every feature they count;
            # a shared pass always counts them, for whichever family reads first.
            counted = (violations or self._shared) and set(kinds) == set(settings.kinds)
            found, counts = self._read_versions(
                settings, start, end, kinds, labels=wanted, expected=expected, count=counted
            )
            if self._shared:
                self._keep(self._versions, key, found)
            if counts is not None and self._shared:
                self._violations[key] = counts
        if not violations:
            return found
        if counts is None:
            counts = self.violations(settings, start, end)
        return {
            version: replace(rows, violations=counts.get(version, {}))
            for version, rows in found.items()
        }

    def violations(
        self, settings: ModelSettings, start: datetime, end: datetime
    ) -> dict[str, dict[str, int]]:
        key = (settings.model, start, end)
        if not self._shared or key not in self._violations:
            self._violations[key] = self._store.type_violations(
                settings.model, start, end, settings.kinds
            )
        return self._violations[key]

    def _keep(self, cache: OrderedDict[Key, Any], key: Key, value: Any) -> None:
        cache[key] = value
        while len(cache) > 1 and sum(_size(item) for item in cache.values()) > self._budget:
            cache.popitem(last=False)

    def _read_versions(
        self,
        settings: ModelSettings,
        start: datetime,
        end: datetime,
        kinds: dict[str, Kind],
        *,
        labels: bool,
        expected: int,
        count: bool,
    ) -> tuple[dict[str, Rows], dict[str, dict[str, int]] | None]:
        """The rows by version, and the violations when ``count`` and read beside them."""
        slices = min(-(-expected // self._slice_rows), MAX_SLICES)
        if slices <= 1 or self._readers <= 1:
            frame, counted = self._frame(
                settings, start, end, kinds, labels=labels, count=count, expected=expected
            )
            split = rows_by_version(frame, kinds, prefix=FEATURE_PREFIX)
            return_freed_memory()
            return split, counted
        step = (end - start) / slices
        bounds = [(start + step * index, start + step * (index + 1)) for index in range(slices)]
        bounds[-1] = (bounds[-1][0], end)  # no rounding gap before the window's end

        def read(bound: tuple[datetime, datetime]) -> tuple[pd.DataFrame, Violations | None]:
            return self._frame(
                settings, *bound, kinds, labels=labels, count=count, expected=expected // slices
            )

        frames: list[pd.DataFrame] = []
        counts: Violations | None = {} if count else None
        with ThreadPoolExecutor(self._readers, thread_name_prefix="modeltap-reads") as pool:
            # In slice order, whatever order they finish in: the same rows every time.
            for frame, counted in pool.map(read, bounds):
                frames.append(frame)
                if counts is not None and counted is not None:
                    _add(counts, counted)
        # The slices joined and then split by version, each step giving up what it took
        # from: the window's rows are held about once, not once per step.
        split = rows_by_version(concat_frames(frames), kinds, prefix=FEATURE_PREFIX)
        return_freed_memory()
        return split, counts

    def _read(
        self,
        settings: ModelSettings,
        start: datetime,
        end: datetime,
        kinds: dict[str, Kind],
        *,
        labels: bool,
    ) -> Rows:
        frame, _ = self._frame(settings, start, end, kinds, labels=labels)
        return rows_from_frame(frame, kinds, prefix=FEATURE_PREFIX)

    def _frame(
        self,
        settings: ModelSettings,
        start: datetime,
        end: datetime,
        kinds: dict[str, Kind],
        *,
        labels: bool,
        count: bool = False,
        expected: int = 0,
    ) -> tuple[pd.DataFrame, Violations | None]:
        """The store's frame of the rows, and with ``count`` their type violations, counted
        in the same read; ``expected`` is about how many rows they are (0: not known)."""
        query: dict[str, Any] = {
            "numerical": [name for name, kind in kinds.items() if kind == "numerical"],
            "categorical": [name for name, kind in kinds.items() if kind == "categorical"],
            "with_labels": labels,
            "class_scores": bool(settings.classes),
            "expected": expected,
        }
        if count:
            return self._store.read_rows_counted(settings.model, start, end, **query)
        return self._store.read_rows(settings.model, start, end, **query), None


def _add(total: Violations, more: Violations) -> None:
    """Add one slice's violation counts (per version, per feature) into ``total``."""
    for version, counts in more.items():
        into = total.setdefault(version, dict.fromkeys(counts, 0))
        for name, count in counts.items():
            into[name] += count


def _size(item: Requests | Rows | Mapping[str, Rows] | Mapping[str, Requests]) -> int:
    if isinstance(item, Mapping):
        return sum(len(rows) for rows in item.values())
    return len(item)
