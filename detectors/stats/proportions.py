"""Tests on counts: chi-square over categories, two proportions, and Mann-Whitney U.

scipy does the distributions; these functions shape the inputs and add effect sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from scipy import special, stats

from detectors.stats.samples import CategoryCounts, FloatArray, align


@dataclass(frozen=True, slots=True)
class TestValue:
    """A test statistic with its p-value."""

    statistic: float
    pvalue: float


def chisquare_counts(reference: CategoryCounts, current: CategoryCounts) -> TestValue:
    """Pearson's chi-square of the window's counts against the reference's shares.

    Expected counts are the reference counts scaled to the window's size, over every
    category seen in either sample (Evidently's ``chisquare`` test). A category the
    reference never saw has an expected count of zero: the statistic is infinite and the
    p-value 0, which is the honest answer.

    >>> chisquare_counts(
    ...     CategoryCounts.from_mapping({"a": 5, "b": 5}),
    ...     CategoryCounts.from_mapping({"a": 2, "b": 2}),
    ... ).pvalue
    1.0
    """
    _, ref_counts, cur_counts = align(reference, current)
    expected = ref_counts * (current.size / reference.size)
    # scipy.stats.chisquare's own arithmetic (_power_divergence with lambda 1, then its
    # chi-square survival function ``chdtrc``) without its array-API wrapper, which costs
    # about a millisecond a call: a backfill makes some sixteen calls per hourly window. The
    # expected counts sum to the window's size by construction, so scipy's sum check holds.
    observed = cur_counts.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = float(((observed - expected) ** 2 / expected).sum())
    return TestValue(statistic, float(special.chdtrc(observed.size - 1, statistic)))


@dataclass(frozen=True, slots=True)
class ProportionsTest:
    """Two-proportion z-test: z, two-sided p-value, difference p2 - p1 and Cohen's h."""

    z: float
    pvalue: float
    difference: float
    cohens_h: float


def two_proportions(successes1: int, n1: int, successes2: int, n2: int) -> ProportionsTest:
    """Pooled two-proportion z-test (Fleiss, *Statistical Methods for Rates and Proportions*).

    z = (p2 - p1) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p the pooled proportion; equal
    proportions give z = 0 and p-value 1, also when both are 0 or 1 (no variance at all).

    >>> round(two_proportions(10, 100, 30, 100).pvalue, 6)
    0.000407
    """
    if min(n1, n2) <= 0:
        raise ValueError("both groups need at least one observation")
    p1, p2 = successes1 / n1, successes2 / n2
    pooled = (successes1 + successes2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    z = 0.0 if p1 == p2 or variance == 0 else (p2 - p1) / math.sqrt(variance)
    pvalue = float(2 * stats.norm.sf(abs(z)))
    # Cohen's h: the difference on the arcsine scale, comparable across base rates.
    h = 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))
    return ProportionsTest(z, min(pvalue, 1.0), p2 - p1, h)


def binary_ztest(reference: CategoryCounts, current: CategoryCounts) -> ProportionsTest:
    """Evidently's ``z`` drift test: the share of values other than the smallest category."""
    keys, ref_counts, cur_counts = align(reference, current)
    # Evidently compares against its sorted union's first value; one column's keys share a
    # type (all text, or all numbers), so they sort.
    first = keys.index(min(cast("list[Any]", keys)))
    return two_proportions(
        reference.size - int(ref_counts[first]),
        reference.size,
        current.size - int(cur_counts[first]),
        current.size,
    )


@dataclass(frozen=True, slots=True)
class RankTest:
    """Mann-Whitney U of the second sample against the first, with effect sizes."""

    u: float
    pvalue: float
    rank_biserial: float
    median_difference: float


def mann_whitney(first: FloatArray, second: FloatArray) -> RankTest:
    """Two-sided Mann-Whitney U (scipy), rank-biserial r = 2U/(n1 n2) - 1 and median shift.

    r is +1 when every value of ``second`` exceeds every value of ``first`` (Kerby, 2014).

    >>> mann_whitney(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])).rank_biserial
    1.0
    """
    result = stats.mannwhitneyu(second, first, alternative="two-sided", method="auto")
    u = float(result.statistic)
    return RankTest(
        u=u,
        pvalue=float(result.pvalue),
        rank_biserial=2 * u / (first.size * second.size) - 1,
        median_difference=float(np.median(second) - np.median(first)),
    )
