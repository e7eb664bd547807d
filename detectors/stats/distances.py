"""Distances between a reference and a window: normalised Wasserstein and Jensen-Shannon.

Both follow Evidently 0.7's definitions so their thresholds mean the same thing:

* Wasserstein-1 (earth mover's) distance divided by the reference's standard deviation,
  floored at 0.001 (``wasserstein_distance_norm.py``): "how many reference standard
  deviations the distribution moved".
* Jensen-Shannon distance (natural logarithm, so between 0 and sqrt(ln 2)) between the
  binned shares of ``detectors.stats.binning`` without any zero replacement (``jensenshannon.py``).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import distance

from detectors.stats.binning import evidently_categorical, evidently_numerical
from detectors.stats.ks import merged_counts
from detectors.stats.samples import CategoryCounts, FloatArray

# Evidently's floor on the normalising standard deviation (constant columns).
MIN_NORM = 0.001


def wasserstein(reference_sorted: FloatArray, current_sorted: FloatArray) -> float:
    """W1 = integral of |F_ref - F_cur|, from the two sorted samples (scipy's definition).

    >>> wasserstein(np.array([0.0, 1.0, 3.0]), np.array([5.0, 6.0, 8.0]))
    5.0
    """
    values, in_ref, in_cur = merged_counts(reference_sorted, current_sorted)
    gaps = np.abs(in_ref[:-1] / reference_sorted.size - in_cur[:-1] / current_sorted.size)
    return float(np.dot(gaps, np.diff(values)))


def wasserstein_norm(
    reference_sorted: FloatArray, current_sorted: FloatArray, reference_std: float
) -> float:
    """W1 in units of the reference's standard deviation (floored at ``MIN_NORM``).

    >>> wasserstein_norm(np.array([0.0, 2.0]), np.array([1.0, 3.0]), 1.0)
    1.0
    """
    return wasserstein(reference_sorted, current_sorted) / max(reference_std, MIN_NORM)


def jensenshannon_numerical(reference_sorted: FloatArray, current_sorted: FloatArray) -> float:
    """Jensen-Shannon distance over Evidently's bins for a numerical column."""
    reference, current = evidently_numerical(reference_sorted, current_sorted)
    return float(distance.jensenshannon(reference, current))


def jensenshannon_categorical(reference: CategoryCounts, current: CategoryCounts) -> float:
    """Jensen-Shannon distance over the categories seen in either sample.

    >>> jensenshannon_categorical(
    ...     CategoryCounts.from_mapping({"a": 1}), CategoryCounts.from_mapping({"a": 5})
    ... )
    0.0
    """
    reference_shares, current_shares = evidently_categorical(reference, current)
    return float(distance.jensenshannon(reference_shares, current_shares))
