"""Population Stability Index: bins fixed from the reference at fit time, or Evidently's.

PSI = sum over bins of (a - e) * ln(a / e), with e and a the reference and current shares
of each bin (Siddiqi, *Credit Risk Scorecards*, 2006). It is the symmetrised Kullback-Leibler
divergence KL(a||e) + KL(e||a), which is how the tests check it against scipy.

Bins (the default mode): the reference's quantiles at 1/k … (k-1)/k (numpy's default linear
interpolation), duplicates dropped, with open outer bins so current values outside the
reference range still land somewhere; a value equal to an edge belongs to the bin above it.
Empty bins would make ln(a/e) infinite, so a share of zero counts as ``PSI_EPSILON`` = 10^-4
(one in ten thousand), without renormalising: a bin that empties or fills then adds a large
but finite term.

Under no drift PSI is not zero on finite samples: it is about chi-square with k-1 degrees of
freedom times (1/n_ref + 1/n_cur), so with 10 bins a window needs a few hundred rows before
the usual 0.2 threshold stops flagging noise.
"""

from __future__ import annotations

import numpy as np

from detectors.stats.binning import evidently_categorical, evidently_fill_zeros, evidently_numerical
from detectors.stats.samples import CategoryCounts, FloatArray, IntArray

PSI_EPSILON = 1e-4


def quantile_edges(sorted_values: FloatArray, bins: int) -> FloatArray:
    """The inner bin edges: reference quantiles at 1/bins … (bins-1)/bins, without duplicates.

    >>> quantile_edges(np.arange(10.0), 2).tolist()
    [4.5]
    """
    if bins < 2:
        raise ValueError(f"PSI needs at least 2 bins, got {bins}")
    return np.unique(np.quantile(sorted_values, np.arange(1, bins) / bins))


def bin_counts(sorted_values: FloatArray, inner_edges: FloatArray) -> IntArray:
    """Counts per bin (-inf, e1), [e1, e2), …, [ek, +inf) of sorted values.

    >>> bin_counts(np.array([1.0, 2.0, 3.0]), np.array([2.0])).tolist()
    [1, 2]
    """
    cuts = np.searchsorted(sorted_values, inner_edges, side="left")
    return np.diff(np.concatenate(([0], cuts, [sorted_values.size]))).astype(np.int64)


def psi(expected: FloatArray, actual: FloatArray, epsilon: float = PSI_EPSILON) -> float:
    """PSI of two share vectors over the same bins; zero shares count as ``epsilon``.

    >>> round(psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])), 6)
    0.274653
    """
    reference = np.where(expected == 0, epsilon, expected)
    current = np.where(actual == 0, epsilon, actual)
    return _psi_terms(reference, current)


def categorical_shares(
    reference: CategoryCounts, current: CategoryCounts
) -> tuple[FloatArray, FloatArray]:
    """Shares over the reference's categories plus one bin for categories it never saw."""
    seen = reference.as_dict()
    current_counts = current.as_dict()
    ref = np.array([*seen.values(), 0], dtype=np.float64)
    unseen = sum(count for key, count in current_counts.items() if key not in seen)
    cur = np.array([*(current_counts.get(key, 0) for key in seen), unseen], dtype=np.float64)
    return ref / max(reference.size, 1), cur / max(current.size, 1)


def psi_evidently_numerical(reference_sorted: FloatArray, current_sorted: FloatArray) -> float:
    """PSI exactly as Evidently 0.7 computes it for a numerical column."""
    reference, current = evidently_numerical(reference_sorted, current_sorted)
    return _psi_terms(evidently_fill_zeros(reference), evidently_fill_zeros(current))


def psi_evidently_categorical(reference: CategoryCounts, current: CategoryCounts) -> float:
    """PSI exactly as Evidently 0.7 computes it for a categorical column."""
    ref, cur = evidently_categorical(reference, current)
    return _psi_terms(evidently_fill_zeros(ref), evidently_fill_zeros(cur))


def _psi_terms(reference: FloatArray, current: FloatArray) -> float:
    # Evidently's operand order, (e - a) * ln(e / a): the same number to the last bit.
    return float(np.sum((reference - current) * np.log(reference / current)))
