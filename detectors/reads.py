"""A window's data from the store, read once per pass when several detectors share it.

Each detector asks for what it needs: operations the serving rows, quality and drift every
feature, performance only the segment feature and labels, A/B only predictions and labels.
A scheduled job reads exactly that. A pass over every detector at the same ``now``
(``monitor detect --once``, a backfill) shares one read of everything per window instead,
so a window of a million rows leaves the database once rather than four times. What a pass
keeps is bounded (``budget`` rows, oldest dropped first): a catch-up over many windows reads
again rather than holding them all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from detectors.rows import Requests, Rows, requests_from_frame, rows_from_frame
from detectors.settings import ModelSettings
from detectors.stats.reference import Kind
from modeltap.store import FEATURE_PREFIX, Store

Key = tuple[str, datetime, datetime]


class Reads:
    """Reads for one job (``shared=False``) or for a whole pass (``shared=True``)."""

    def __init__(self, store: Store, *, shared: bool = False, budget: int = 2_000_000) -> None:
        self._store = store
        self._shared = shared
        self._budget = budget
        self._rows: OrderedDict[Key, Rows] = OrderedDict()
        self._requests: OrderedDict[Key, Requests] = OrderedDict()
        self._violations: dict[Key, dict[str, dict[str, int]]] = {}
        self._counts: dict[tuple[str, datetime, datetime], dict[datetime, tuple[int, int]]] = {}

    def event_counts(
        self, model: str, start: datetime, end: datetime, size: timedelta
    ) -> dict[datetime, tuple[int, int]]:
        key = (model, start, end)
        if not self._shared or key not in self._counts:
            self._counts[key] = self._store.event_counts(model, start, end, size)
        return self._counts[key]

    def requests(self, model: str, start: datetime, end: datetime) -> Requests:
        key = (model, start, end)
        found = self._requests.get(key)
        if found is None:
            found = requests_from_frame(self._store.read_serving(model, start, end))
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

    def violations(
        self, settings: ModelSettings, start: datetime, end: datetime
    ) -> dict[str, dict[str, int]]:
        key = (settings.model, start, end)
        if not self._shared or key not in self._violations:
            self._violations[key] = self._store.type_violations(
                settings.model, start, end, settings.kinds
            )
        return self._violations[key]

    def _keep(self, cache: OrderedDict[Key, Any], key: Key, value: Requests | Rows) -> None:
        cache[key] = value
        while len(cache) > 1 and sum(len(item) for item in cache.values()) > self._budget:
            cache.popitem(last=False)

    def _read(
        self,
        settings: ModelSettings,
        start: datetime,
        end: datetime,
        kinds: dict[str, Kind],
        *,
        labels: bool,
    ) -> Rows:
        frame = self._store.read_rows(
            settings.model,
            start,
            end,
            numerical=[name for name, kind in kinds.items() if kind == "numerical"],
            categorical=[name for name, kind in kinds.items() if kind == "categorical"],
            with_labels=labels,
        )
        return rows_from_frame(frame, kinds, prefix=FEATURE_PREFIX)
