"""KS against scipy.stats.ks_2samp: same statistic, same p-value, same exact/asymp choice."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors.stats.ks import (
    MAX_EXACT_N,
    KsResult,
    ks_2samp_sorted,
    ks_statistic,
    kstwo_sf,
    merged_counts,
)
from detectors.stats.samples import FloatArray

TOLERANCE = 1e-9


def scipy_and_ours(a: FloatArray, b: FloatArray) -> tuple[Any, KsResult]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy announcing its fallback
        expected = stats.ks_2samp(a, b, method="auto")
    return expected, ks_2samp_sorted(np.sort(a), np.sort(b))


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (5, 7, 0.0),
        (40, 40, 0.5),
        (300, 1000, 0.1),
        (MAX_EXACT_N, MAX_EXACT_N, 0.02),  # the last size scipy computes exactly
        (MAX_EXACT_N, MAX_EXACT_N + 1, 0.02),  # the first it does not
        (MAX_EXACT_N + 1, 50, 0.3),
        (20_000, 150_000, 0.01),
        (100_000, 1_000, 0.0),
    ],
)
def test_statistic_and_pvalue_equal_scipy(n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(size=n1), rng.normal(shift, 1.0, size=n2)
    expected, ours = scipy_and_ours(a, b)
    assert ours.statistic == pytest.approx(expected.statistic, abs=TOLERANCE)
    assert ours.pvalue == pytest.approx(expected.pvalue, abs=TOLERANCE)
    assert ours.method == ("exact" if max(n1, n2) <= MAX_EXACT_N else "asymp")


def test_ties_and_discrete_values_equal_scipy() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 5, size=30_000).astype(float)
    b = rng.integers(0, 6, size=12_000).astype(float)
    expected, ours = scipy_and_ours(a, b)
    assert ours.statistic == pytest.approx(expected.statistic, abs=TOLERANCE)
    assert ours.pvalue == pytest.approx(expected.pvalue, abs=TOLERANCE)


def test_large_sample_statistic_is_bit_identical() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.standard_t(3, size=50_000), rng.standard_t(3, size=400_000) * 1.01
    expected = stats.ks_2samp(a, b)
    assert ks_statistic(np.sort(a), np.sort(b)) == float(expected.statistic)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
)
def test_any_small_samples_equal_scipy(a: list[float], b: list[float]) -> None:
    expected, ours = scipy_and_ours(np.array(a), np.array(b))
    assert ours.statistic == pytest.approx(expected.statistic, abs=TOLERANCE)
    assert ours.pvalue == pytest.approx(expected.pvalue, abs=TOLERANCE)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(10_001, 30_000), st.integers(1, 5000))
def test_any_large_samples_equal_scipy(seed: int, n1: int, n2: int) -> None:
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(size=n1), 2)  # rounding makes ties likely
    b = np.round(rng.normal(0.05, 1.0, size=n2), 2)
    expected, ours = scipy_and_ours(a, b)
    assert ours.statistic == pytest.approx(expected.statistic, abs=TOLERANCE)
    assert ours.pvalue == pytest.approx(expected.pvalue, abs=TOLERANCE)


def test_identical_samples_do_not_drift_and_shifted_ones_do() -> None:
    rng = np.random.default_rng(1)
    a = np.sort(rng.normal(size=20_000))
    same = ks_2samp_sorted(a, a)
    shifted = ks_2samp_sorted(a, np.sort(rng.normal(0.5, 1.0, size=20_000)))
    assert (same.statistic, same.pvalue) == (0.0, 1.0)
    assert shifted.statistic > 0.15
    assert shifted.pvalue < 1e-100


def test_merged_counts_by_hand() -> None:
    values, in_a, in_b = merged_counts(np.array([1.0, 1.0, 3.0]), np.array([1.0, 2.0]))
    assert values.tolist() == [1.0, 2.0, 3.0]
    assert in_a.tolist() == [2, 2, 3]
    assert in_b.tolist() == [1, 2, 2]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, MAX_EXACT_N), st.integers(1, 4000),
       st.sampled_from([0.0, 0.05, 0.4]))  # fmt: skip
def test_exact_sizes_are_bit_identical_to_scipy(seed: int, n1: int, n2: int, shift: float) -> None:
    # A backfill's windows are mostly this size: the reference sample (at most 10,000) and a
    # segment of an hour. scipy's exact distribution is called on our statistic, so the
    # results must not differ at all, ties included.
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(size=n1), 1)
    b = np.round(rng.normal(shift, 1.0, size=n2), 1)
    expected, ours = scipy_and_ours(a, b)
    assert (ours.statistic, ours.pvalue) == (float(expected.statistic), float(expected.pvalue))


def test_empty_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        ks_2samp_sorted(np.array([1.0]), np.array([]))


def test_scipy_falling_back_to_asymp_is_followed_and_reported() -> None:
    # D = 1/34 on equal sizes: scipy's exact sum exceeds 1 by rounding, so scipy warns and
    # switches to the asymptotic distribution; the result must say so.
    a = np.arange(34.0)
    b = a + 0.5
    with pytest.warns(RuntimeWarning, match="Switching to method=asymp"):
        expected = stats.ks_2samp(a, b)
    ours = ks_2samp_sorted(a, b)
    assert (ours.statistic, ours.pvalue) == (float(expected.statistic), float(expected.pvalue))
    assert ours.method == "asymp"


@pytest.mark.parametrize("n", [141, 1_000, 10_001, 90_909, 500_000, 1_000_000])
def test_kstwo_sf_equals_scipy_across_its_branches(n: int) -> None:
    # n D² from far below the vectorised branch (2.2 <= n D² < 370) to past its end, where
    # scipy answers 0; near the branch's edges on both sides, too.
    tails = [0.01, 0.5, 2.19, 2.2, 2.21, 3.0, 10.0, 50.0, 200.0, 369.9, 370.0, 500.0]
    for tail in tails:
        statistic = float(np.sqrt(tail / n))
        expected = float(np.clip(stats.kstwo.sf(statistic, n), 0, 1))
        ours = kstwo_sf(statistic, n)
        assert ours == pytest.approx(expected, rel=1e-9, abs=1e-300), (n, tail)
