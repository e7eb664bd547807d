"""Data quality and serving figures, by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detectors.emit import Scope
from detectors.families.operations import operations, results
from detectors.families.quality import categorical_quality, numerical_quality
from detectors.rows import Requests
from detectors.settings import ModelSettings
from detectors.stats.reference import fit_categorical, fit_numerical
from detectors.stats.samples import CategoryCounts
from detectors.windows import Window


def test_numerical_quality_counts_missing_violations_and_out_of_range() -> None:
    reference = fit_numerical(np.array([0.0, 5.0, 10.0]), violations=0, bins=2, sample_size=10)
    values = np.array([1.0, -1.0, 11.0, 10.0, np.nan, np.nan, np.nan])
    quality = numerical_quality(values, violations=1, reference=reference)
    # 7 rows: 4 usable, 1 violation, 2 missing; -1 and 11 are outside [0, 10].
    assert (quality.rows, quality.usable, quality.violations, quality.missing) == (7, 4, 1, 2)
    assert quality.missing_ratio == pytest.approx(2 / 7)
    assert quality.violation_share == pytest.approx(1 / 7)
    assert quality.outside_share == 0.5


def test_categorical_quality_counts_unseen_categories() -> None:
    reference = fit_categorical({"a": 5, "b": 5}, rows=10, violations=0, max_categories=10)
    current = CategoryCounts.from_mapping({"a": 3, "c": 1})
    quality = categorical_quality(current, rows=6, violations=1, reference=reference)
    assert (quality.missing, quality.outside, quality.usable) == (1, 1, 4)
    assert quality.outside_share == 0.25


def test_without_reference_or_rows_nothing_is_made_up() -> None:
    empty = numerical_quality(np.array([]), violations=0, reference=None)
    assert (empty.missing_ratio, empty.outside_share) == (None, None)


def test_operations_quantiles_errors_and_throughput() -> None:
    rng = np.random.default_rng(0)
    latency = rng.lognormal(3, 0.5, size=1000)
    status = np.where(rng.uniform(size=1000) < 0.02, 503, 200)
    failed = np.zeros(1000, dtype=bool)
    failed[:5] = True
    status[:5] = 200  # an upstream failure counts even with the sidecar's own status
    figures = operations(latency, status, failed, seconds=500.0)
    assert figures.latency_ms == {q: pytest.approx(np.percentile(latency, q)) for q in (50, 90, 99)}
    assert figures.latency_mean_ms == pytest.approx(latency.mean())
    assert figures.errors == int((status != 200).sum()) + 5
    assert figures.throughput_rps == 2.0
    assert (
        operations(
            np.array([]), np.array([], dtype=np.int64), np.array([], dtype=bool), 60
        ).error_rate
        is None
    )


@pytest.mark.parametrize(("size", "alerts"), [(3, False), (29, False), (30, True)])
def test_error_rate_alerts_only_from_the_minimum_size(size: int, alerts: bool) -> None:
    t = datetime(2026, 11, 25, 12, tzinfo=UTC)
    settings = ModelSettings(
        "m", "classification", {"x": "numerical"}, thresholds={"error_rate": 0.05}, min_rows=30
    )
    status = np.full(size, 200)
    status[:2] = 500  # 2 of 3 is 67%, 2 of 30 is 6.7%: both past 5%
    requests = Requests(
        np.full(size, "v1", dtype=object),
        np.full(size, 10.0),
        status.astype(np.int64),
        np.zeros(size, dtype=bool),
    )
    scope = Scope("m", "v1", Window(t, t + timedelta(hours=1)), t)
    found = next(
        r for r in results(scope, requests, 3600.0, settings) if r.detector == "error_rate"
    )
    assert found.score == pytest.approx(2 / size)
    assert found.alert is alerts
    if not alerts:
        assert found.status == "insufficient_data"
        assert found.details["reason"] == (
            f"{size} requests; error_rate alerts from 30 (detectors.min_rows)"
        )
