"""Thresholds learned from the reference's own chunks, and the estimated figures judged by them.

NannyML's default threshold (``StandardDeviationThreshold`` in nannyml/thresholds.py) is the
mean of a figure over the reference's chunks ± 3 standard deviations of it (``np.nanmean``
and ``np.nanstd``: chunks whose figure is undefined are left out, and the deviation is the
population one, ddof=0). A bound past the figure's natural limit (0 for an error, 0 and 1 for
accuracy) is replaced by the limit, or, for the reconstruction error, dropped: there NannyML
calls ``calculate_threshold_values(..., override_using_none=True)``. A value alerts when it is
strictly outside the band, on either side, as NannyML's ``Metric.alert`` decides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from detectors.stats.samples import FloatArray
from modeltap.schema import Direction, JsonValue

# NannyML's SAMPLING_ERROR_RANGE: the confidence band is the estimate ± 3 sampling errors.
SAMPLING_ERROR_RANGE = 3.0
# NannyML's DefaultChunker splits the reference into this many chunks.
DEFAULT_CHUNK_COUNT = 10

Side = Literal["below", "above"]


@dataclass(frozen=True, slots=True)
class Band:
    """The range a figure kept over the reference's chunks; either bound may be absent.

    >>> Band(0.8, 0.9).breach(0.75), Band(0.8, 0.9).breach(0.85), Band(None, 1.0).breach(2.0)
    ('below', None, 'above')
    """

    lower: float | None
    upper: float | None

    def breach(self, value: float) -> Side | None:
        """Which side of the band ``value`` lies on, strictly, or None inside it."""
        if self.lower is not None and value < self.lower:
            return "below"
        if self.upper is not None and value > self.upper:
            return "above"
        return None

    def to_json(self) -> dict[str, JsonValue]:
        return {"lower": self.lower, "upper": self.upper}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Band:
        lower, upper = data.get("lower"), data.get("upper")
        return cls(None if lower is None else float(lower), None if upper is None else float(upper))


def chunk_bounds(size: int, chunk_size: int) -> list[tuple[int, int]]:
    """Consecutive [start, end) row ranges of ``chunk_size`` rows, the remainder kept as the last
    (NannyML's ``SizeBasedChunker(incomplete="keep")``).

    >>> chunk_bounds(7, 3)
    [(0, 3), (3, 6), (6, 7)]
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    return [(start, min(start + chunk_size, size)) for start in range(0, size, chunk_size)]


def default_chunk_size(size: int) -> int:
    """The chunk size NannyML's DefaultChunker picks: about ten chunks.

    >>> default_chunk_size(1005)
    100
    """
    return max(1, size // DEFAULT_CHUNK_COUNT)


def reference_band(
    chunk_values: Sequence[float] | FloatArray,
    *,
    multiplier: float = 3.0,
    lower_limit: float | None = None,
    upper_limit: float | None = None,
    drop_beyond_limit: bool = False,
) -> Band:
    """Mean ± ``multiplier`` standard deviations of the chunks' values, a bound past a limit
    replaced by it (or dropped with ``drop_beyond_limit``); an all-undefined figure has no band.

    >>> band = reference_band([1.0, 2.0, 3.0], multiplier=1.0)
    >>> round(band.lower, 6), round(band.upper, 6)
    (1.183503, 2.816497)
    >>> reference_band([0.1, 0.5], lower_limit=0.0, drop_beyond_limit=True).lower is None
    True
    """
    values = np.asarray(chunk_values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Band(None, None)
    centre, spread = float(np.mean(values)), float(np.std(values))
    lower, upper = centre - multiplier * spread, centre + multiplier * spread
    # NannyML compares with <= and >=: a bound exactly at the limit is replaced too.
    if lower_limit is not None and lower <= lower_limit:
        lower = math.nan if drop_beyond_limit else lower_limit
    if upper_limit is not None and upper >= upper_limit:
        upper = math.nan if drop_beyond_limit else upper_limit
    return Band(None if math.isnan(lower) else lower, None if math.isnan(upper) else upper)


@dataclass(frozen=True, slots=True)
class Estimate:
    """One figure for one window: its value, sampling error and the reference band.

    ``direction`` is the side that means worse (accuracy: lower; an error: higher), recorded
    so nobody has to guess; ``alert`` follows NannyML and fires outside the band on either
    side, with ``breach`` saying which. ``value`` is None when the window cannot define the
    figure (no rows), and then nothing alerts.

    >>> e = Estimate.judge(
    ...     "accuracy", 0.7, 0.01, Band(0.8, 0.9), direction="lower", size=500, limits=(0, 1))
    >>> e.alert, e.breach, e.confidence
    (True, 'below', (0.6699999999999999, 0.73))
    """

    name: str
    value: float | None
    sampling_error: float | None
    band: Band
    direction: Direction
    alert: bool
    breach: Side | None
    size: int
    confidence: tuple[float, float] | None

    @classmethod
    def judge(
        cls,
        name: str,
        value: float | None,
        sampling_error: float | None,
        band: Band,
        *,
        direction: Direction,
        size: int,
        limits: tuple[float | None, float | None] = (None, None),
    ) -> Estimate:
        """The estimate, its alert and its ± 3 sampling-error interval clipped to ``limits``."""
        if value is None or not math.isfinite(value):
            return cls(name, None, sampling_error, band, direction, False, None, size, None)
        confidence = None
        if sampling_error is not None and math.isfinite(sampling_error):
            low, high = limits
            confidence = (
                max(
                    value - SAMPLING_ERROR_RANGE * sampling_error, -math.inf if low is None else low
                ),
                min(
                    value + SAMPLING_ERROR_RANGE * sampling_error,
                    math.inf if high is None else high,
                ),
            )
        breach = band.breach(value)
        return cls(
            name,
            value,
            sampling_error,
            band,
            direction,
            breach is not None,
            breach,
            size,
            confidence,
        )
