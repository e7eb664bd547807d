"""How far the demo's estimated accuracy leads its late labels.

The estimate of a window exists when the window closes (the runner computes a closed window
at its end). Its realized accuracy can first be computed once ``detectors.min_rows`` of the
window's rows are labelled: the arrival of that many-th label, read from the labels' own
``received_at``. The lead is the time between the two, for the first window whose estimate
alerted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from detectors import fitting
from detectors.settings import ModelSettings
from modeltap.store import Store


@dataclass(frozen=True, slots=True)
class Lead:
    """The first window whose estimated accuracy alerted, and when its labels could say so."""

    version: str
    window_start: datetime
    window_end: datetime
    estimated: float
    threshold: float
    # When the estimate existed (the window's end) and when the min_rows-th label arrived;
    # None when that many labels never arrive.
    estimated_at: datetime
    realized_at: datetime | None
    labels_needed: int

    @property
    def lead(self) -> timedelta | None:
        return None if self.realized_at is None else self.realized_at - self.estimated_at

    def describe(self) -> str:
        """One sentence for the demo's output."""
        head = (
            f"estimated accuracy of {self.version} for {self.window_start:%H:%M}-"
            f"{self.window_end:%H:%M} UTC alerted at {self.estimated_at:%H:%M} "
            f"({self.estimated:.3f} < threshold {self.threshold:.3f})"
        )
        if self.realized_at is None or self.lead is None:
            return f"{head}; fewer than {self.labels_needed} of its labels ever arrive"
        return (
            f"{head}; its {self.labels_needed}th label arrives at "
            f"{self.realized_at:%m-%d %H:%M} UTC, so the realized accuracy can first be "
            f"computed then: the estimate leads the labels by "
            f"{self.lead.total_seconds() / 3600:.1f} h"
        )


def estimate_lead(
    store: Store, settings: ModelSettings, start: datetime, end: datetime
) -> Lead | None:
    """The lead of the first alerting ``estimated_accuracy`` window between ``start`` and
    ``end`` (None when no estimate alerted)."""
    alerted = sorted(
        (r for r in store.results_between(settings.model, start, end)
         if r.detector == "estimated_accuracy" and r.alert and not r.segment
         and r.score is not None and r.threshold is not None),
        key=lambda r: (r.window_start, r.version),
    )  # fmt: skip
    if not alerted:
        return None
    first = alerted[0]
    rows = fitting.rows_from_store(
        store, settings, first.window_start, first.window_end, first.version
    )
    arrivals = np.asarray(rows.label_received_at, dtype=np.float64)
    arrivals = np.sort(arrivals[np.isfinite(arrivals)])
    needed = settings.min_rows
    realized_at = (
        datetime.fromtimestamp(float(arrivals[needed - 1]), UTC)
        if len(arrivals) >= needed
        else None
    )
    return Lead(
        version=first.version,
        window_start=first.window_start,
        window_end=first.window_end,
        estimated=float(first.score or 0.0),
        threshold=float(first.threshold or 0.0),
        estimated_at=first.window_end,
        realized_at=realized_at,
        labels_needed=needed,
    )
