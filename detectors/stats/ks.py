"""Two-sample Kolmogorov-Smirnov test against a reference sorted once, at fit time.

``scipy.stats.ks_2samp`` sorts both samples and then binary-searches every value of the
concatenation in both, with unsorted keys: most of its time on large windows goes to those
cache-unfriendly searches. Here the reference arrives sorted, the window is sorted once
(shared with the other tests), and the two sorted runs are merged in linear time (a stable
argsort of two concatenated runs is a single timsort merge), after which both empirical
CDFs are running counts.

The p-value follows scipy's ``method="auto"`` exactly: up to ``MAX_EXACT_N`` values in the
larger sample scipy computes the exact distribution (falling back to the asymptotic one
when that fails). That exact distribution is scipy's own routine, handed the statistic
computed here: ``ks_2samp`` around it re-sorts both samples, searches them and goes through
its array-API wrapper, about 1.3 ms a call that a backfill pays some 35 times per hourly
window (its segments and versions). Above it, scipy uses
``kstwo.sf(D, round(m*n/(m+n)))`` (scipy/stats/_stats_py.py, ``ks_2samp``), which is
reproduced here on the fast statistic, with the series behind drifted windows' p-values
summed vectorised (:func:`kstwo_sf`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

# The exact distribution scipy's ks_2samp uses (private; pinned in constraints.txt, and
# tests/detectors/test_ks.py compares every path with the public ks_2samp).
from scipy.stats._stats_py import _attempt_exact_2kssamp  # type: ignore[attr-defined]

from detectors.stats.samples import FloatArray, IntArray

# scipy.stats.ks_2samp: "'auto' will attempt to be exact if n1,n2 <= MAX_AUTO_N".
MAX_EXACT_N = 10_000


@dataclass(frozen=True, slots=True)
class KsResult:
    """D (the largest gap between the two empirical CDFs), its p-value and the method."""

    statistic: float
    pvalue: float
    method: Literal["exact", "asymp"]


def merged_counts(a: FloatArray, b: FloatArray) -> tuple[FloatArray, IntArray, IntArray]:
    """At each distinct value of the union of sorted ``a`` and ``b``: how many of each are <= it.

    >>> values, in_a, in_b = merged_counts(np.array([1.0, 2.0]), np.array([2.0, 3.0]))
    >>> values.tolist(), in_a.tolist(), in_b.tolist()
    ([1.0, 2.0, 3.0], [1, 2, 2], [0, 1, 2])
    """
    combined = np.concatenate((a, b))
    order = np.argsort(combined, kind="stable")
    values = combined[order]
    in_a = np.cumsum(order < a.size, dtype=np.int64)
    in_b = np.arange(1, values.size + 1, dtype=np.int64) - in_a
    # The CDFs are right-continuous: among tied values only the last position counts.
    last = np.empty(values.size, dtype=bool)
    np.not_equal(values[1:], values[:-1], out=last[:-1])
    last[-1] = True
    if last.all():
        return values, in_a, in_b
    return values[last], in_a[last], in_b[last]


def ks_statistic(reference_sorted: FloatArray, current_sorted: FloatArray) -> float:
    """sup |F_ref - F_cur| over both samples, computed as scipy computes it.

    >>> ks_statistic(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    0.0
    """
    _, in_ref, in_cur = merged_counts(reference_sorted, current_sorted)
    # Same float operations as scipy (count / n, then the difference), so D is identical.
    gaps = in_ref / reference_sorted.size - in_cur / current_sorted.size
    above = float(gaps.max())
    below = float(np.clip(-gaps.min(), 0, 1))
    return below if below > above else above


def ks_2samp_sorted(reference_sorted: FloatArray, current_sorted: FloatArray) -> KsResult:
    """The two-sided KS test of two sorted, finite, non-empty samples; equals scipy's ``auto``.

    >>> ks_2samp_sorted(np.arange(5.0), np.arange(5.0)).pvalue
    1.0
    """
    n1, n2 = reference_sorted.size, current_sorted.size
    if min(n1, n2) == 0:
        raise ValueError("the KS test needs at least one value in each sample")
    statistic = ks_statistic(reference_sorted, current_sorted)
    larger, smaller = max(float(n1), float(n2)), min(float(n1), float(n2))
    effective = int(np.round(larger * smaller / (larger + smaller)))
    if max(n1, n2) <= MAX_EXACT_N:
        return _exact(n1, n2, statistic, effective)
    return KsResult(statistic, kstwo_sf(statistic, effective), "asymp")


def _exact(n1: int, n2: int, statistic: float, effective: int) -> KsResult:
    """What ``ks_2samp(method="auto")`` returns for sizes it computes exactly.

    scipy rounds D to the lattice of the exact distribution (h / lcm(n1, n2)) and reports
    that D, also when the exact sum fails and it falls back to ``kstwo.sf`` on it.
    """
    success, rounded, pvalue = _attempt_exact_2kssamp(
        n1, n2, math.gcd(n1, n2), statistic, "two-sided"
    )
    if success:
        return KsResult(float(rounded), float(np.clip(pvalue, 0.0, 1.0)), "exact")
    fallback = float(np.clip(stats.kstwo.sf(rounded, effective), 0.0, 1.0))
    return KsResult(float(rounded), fallback, "asymp")


def kstwo_sf(statistic: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(statistic, n)`` clipped to [0, 1], its slowest branch vectorised.

    For ``n > 140`` and ``2.2 <= n D² < 370`` scipy's survival function is ``2 smirnov(n, D)``
    (``_kolmogn`` in scipy/stats/_ksstats.py), and ``scipy.special.smirnov`` adds up the
    Birnbaum-Tingey series one term at a time in extended precision: 66 ms at n = 90,909,
    which is a drifted window's typical D, and more than the whole statistic. The same series
    summed in log space with numpy takes about 4 ms and agrees with scipy to 1e-9 relative
    up to n = 10⁶ (checked on a grid in tests/detectors/test_ks.py). Every other case is
    scipy's own.

    >>> bool(abs(kstwo_sf(0.02, 90_909) / stats.kstwo.sf(0.02, 90_909) - 1) < 1e-9)
    True
    """
    tail = n * statistic * statistic
    if n > 140 and 1.0 < n * statistic < n - 1 and statistic < 0.5 and 2.2 <= tail < 370.0:
        return float(np.clip(2.0 * _smirnov(n, statistic), 0.0, 1.0))
    return float(np.clip(stats.kstwo.sf(statistic, n), 0.0, 1.0))


def _smirnov(n: int, x: float) -> float:
    """P(D⁺ₙ >= x) = x Σ_{j=0}^{⌊n(1-x)⌋} C(n, j) (x + j/n)^(j-1) (1 - x - j/n)^(n-j)."""
    j = np.arange(0, np.floor(n * (1.0 - x)) + 1.0)
    u = x + j / n
    j, u = j[u < 1.0], u[u < 1.0]  # a term with x + j/n = 1 is zero
    log_binomial = -np.log(n + 1.0) - special.betaln(n - j + 1.0, j + 1.0)
    log_terms = log_binomial + (j - 1.0) * np.log(u) + (n - j) * np.log1p(-u)
    top = float(log_terms.max())
    return float(x * np.exp(top) * np.exp(log_terms - top).sum())
