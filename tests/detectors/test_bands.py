"""Reference bands: NannyML's mean ± 3 standard deviations of the reference chunks, its
limits and its alerts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.stats.bands import Band, Estimate, chunk_bounds, default_chunk_size, reference_band


def test_band_is_mean_plus_minus_three_population_deviations() -> None:
    values = [0.91, 0.93, 0.90, 0.94, 0.92]
    band = reference_band(values)
    spread = float(np.std(values))  # ddof=0, as np.nanstd in NannyML
    assert band.lower == pytest.approx(0.92 - 3 * spread)
    assert band.upper == pytest.approx(0.92 + 3 * spread)


def test_undefined_chunks_are_left_out() -> None:
    assert reference_band([0.5, math.nan, 0.7]) == reference_band([0.5, 0.7])
    assert reference_band([math.nan]) == Band(None, None)


def test_limits_replace_or_drop_bounds_past_them() -> None:
    wide = [0.2, 0.9]
    assert reference_band(wide, lower_limit=0.0, upper_limit=1.0) == Band(0.0, 1.0)
    assert reference_band(wide, lower_limit=0.0, drop_beyond_limit=True).lower is None
    # NannyML replaces a bound that is exactly at the limit too (<=).
    assert reference_band([0.0, 0.0], lower_limit=0.0, drop_beyond_limit=True).lower is None


def test_alert_is_strictly_outside_either_side() -> None:
    band = Band(0.8, 0.9)
    assert [band.breach(v) for v in (0.8, 0.9, 0.79, 0.91)] == [None, None, "below", "above"]
    high = Estimate.judge("accuracy", 0.95, 0.01, band, direction="lower", size=10)
    assert high.alert
    assert high.breach == "above"
    assert high.direction == "lower"


def test_chunks_keep_the_remainder() -> None:
    assert chunk_bounds(10, 5) == [(0, 5), (5, 10)]
    assert chunk_bounds(11, 5)[-1] == (10, 11)
    assert default_chunk_size(5) == 1
    with pytest.raises(ValueError, match="chunk_size"):
        chunk_bounds(10, 0)


def test_band_round_trips_through_json() -> None:
    for band in (Band(0.1, 0.2), Band(None, 3.0)):
        assert Band.from_json(band.to_json()) == band
