"""Chi-square, two proportions and Mann-Whitney: shaped inputs for scipy, effect sizes by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from detectors.rows import category_counts
from detectors.stats.proportions import (
    binary_ztest,
    chisquare_counts,
    mann_whitney,
    two_proportions,
)
from detectors.stats.samples import CategoryCounts
from tests.detectors.known import evidently_score


def counts(mapping: dict[str, int]) -> CategoryCounts:
    return CategoryCounts.from_mapping(dict(mapping))


def test_chisquare_is_scipys_with_reference_shares_as_expectation() -> None:
    reference = counts({"a": 600, "b": 300, "c": 100})
    current = counts({"a": 50, "b": 35, "c": 15})
    expected = stats.chisquare([50, 35, 15], [60.0, 30.0, 10.0])
    result = chisquare_counts(reference, current)
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.pvalue == pytest.approx(expected.pvalue, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(1, 100_000), min_size=2, max_size=40),
    st.lists(st.integers(0, 5_000), min_size=2, max_size=40),
)
def test_chisquare_is_bit_identical_to_scipy(reference: list[int], window: list[int]) -> None:
    size = min(len(reference), len(window))
    reference, window = reference[:size], window[:size]
    keys = [f"c{index}" for index in range(size)]
    if sum(window) == 0:
        window[0] = 1
    ours = chisquare_counts(
        counts(dict(zip(keys, reference, strict=True))),
        counts(dict(zip(keys, window, strict=True))),
    )
    expected_counts = np.array(reference) * (sum(window) / sum(reference))
    expected = stats.chisquare(window, expected_counts)
    assert (ours.statistic, ours.pvalue) == (float(expected.statistic), float(expected.pvalue))


def test_a_category_the_reference_never_saw_gives_p_zero() -> None:
    result = chisquare_counts(counts({"a": 10, "b": 10}), counts({"a": 5, "b": 4, "new": 1}))
    assert result.pvalue == 0.0
    assert math.isinf(result.statistic)


def test_chisquare_reproduces_evidently() -> None:
    rng = np.random.default_rng(2)
    ref = rng.choice(list("abcd"), p=[0.4, 0.3, 0.2, 0.1], size=900)
    cur = rng.choice(list("abcd"), p=[0.35, 0.3, 0.2, 0.15], size=700)
    expected, drifted = evidently_score("chisquare", ref, cur, "categorical")
    result = chisquare_counts(
        category_counts(pd.Series(ref, dtype=object)), category_counts(pd.Series(cur, dtype=object))
    )
    assert result.pvalue == pytest.approx(expected, abs=1e-12)
    assert drifted == (result.pvalue < 0.05)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(10, 100, 30, 100), (5, 1000, 9, 1200), (480, 1000, 520, 1000)]
)
def test_two_proportions_equal_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    z, pvalue = proportions_ztest([x2, x1], [n2, n1])
    result = two_proportions(x1, n1, x2, n2)
    assert result.z == pytest.approx(z, abs=1e-9)
    assert result.pvalue == pytest.approx(pvalue, abs=1e-9)
    assert result.difference == pytest.approx(x2 / n2 - x1 / n1)
    h = 2 * math.asin(math.sqrt(x2 / n2)) - 2 * math.asin(math.sqrt(x1 / n1))
    assert result.cohens_h == pytest.approx(h)


def test_equal_proportions_have_p_one_even_without_variance() -> None:
    assert two_proportions(0, 50, 0, 80).pvalue == 1.0
    assert two_proportions(50, 50, 80, 80).pvalue == 1.0
    assert two_proportions(10, 100, 20, 200).z == 0.0


def test_binary_ztest_reproduces_evidently() -> None:
    rng = np.random.default_rng(3)
    ref = rng.choice(["no", "yes"], p=[0.7, 0.3], size=800)
    cur = rng.choice(["no", "yes"], p=[0.6, 0.4], size=600)
    expected, _ = evidently_score("z", ref, cur, "categorical")
    result = binary_ztest(
        category_counts(pd.Series(ref, dtype=object)), category_counts(pd.Series(cur, dtype=object))
    )
    assert result.pvalue == pytest.approx(expected, abs=1e-12)


def test_mann_whitney_is_scipys_with_rank_biserial_effect() -> None:
    rng = np.random.default_rng(4)
    first, second = rng.lognormal(3.0, 0.4, size=400), rng.lognormal(3.1, 0.4, size=300)
    expected = stats.mannwhitneyu(second, first, alternative="two-sided")
    result = mann_whitney(first, second)
    assert result.u == expected.statistic
    assert result.pvalue == pytest.approx(expected.pvalue, abs=1e-12)
    assert result.rank_biserial == pytest.approx(2 * expected.statistic / (400 * 300) - 1)
    assert result.median_difference == pytest.approx(np.median(second) - np.median(first))
