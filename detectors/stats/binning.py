"""Histograms over sorted samples, and Evidently 0.7's binning for its PSI and Jensen-Shannon.

Evidently (``evidently/legacy/calculations/stattests/utils.py``, ``get_binned_data``) bins a
numerical column whose reference holds more than 20 distinct values into Sturges bins over
reference and current together; otherwise, and for categorical columns, every value seen in
either sample is its own bin. For PSI it then replaces empty bins, per sample, by the smallest
non-zero share divided by 10^6 when that share is at most 10^-4, else by 10^-4. This module
reproduces those numbers; it does not share Evidently's code.
"""

from __future__ import annotations

import numpy as np

from detectors.stats.samples import CategoryCounts, FloatArray, IntArray, align

# More distinct reference values than this and Evidently bins numbers instead of counting them.
EVIDENTLY_DISTINCT_LIMIT = 20


def distinct_count(sorted_values: FloatArray) -> int:
    """How many different values a sorted array holds."""
    if sorted_values.size == 0:
        return 0
    return 1 + int(np.count_nonzero(sorted_values[1:] != sorted_values[:-1]))


def sorted_histogram(sorted_values: FloatArray, edges: FloatArray) -> IntArray:
    """``np.histogram(values, edges)[0]`` for sorted values: the last bin includes its right edge.

    >>> sorted_histogram(np.array([0.0, 0.5, 1.0, 2.0]), np.array([0.0, 1.0, 2.0])).tolist()
    [2, 2]
    """
    cuts = np.concatenate(
        (
            np.searchsorted(sorted_values, edges[:-1], side="left"),
            np.searchsorted(sorted_values, edges[-1:], side="right"),
        )
    )
    return np.diff(cuts).astype(np.int64)


def evidently_numerical(
    reference_sorted: FloatArray, current_sorted: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Shares per bin as Evidently's ``get_binned_data`` computes them for a numerical column."""
    if distinct_count(reference_sorted) > EVIDENTLY_DISTINCT_LIMIT:
        edges = np.histogram_bin_edges(
            np.concatenate((reference_sorted, current_sorted)), bins="sturges"
        )
        return (
            sorted_histogram(reference_sorted, edges) / reference_sorted.size,
            sorted_histogram(current_sorted, edges) / current_sorted.size,
        )
    return evidently_categorical(_value_counts(reference_sorted), _value_counts(current_sorted))


def evidently_categorical(
    reference: CategoryCounts, current: CategoryCounts
) -> tuple[FloatArray, FloatArray]:
    """Shares of every value seen in either sample, as Evidently's ``get_binned_data``."""
    _, ref_counts, cur_counts = align(reference, current)
    return ref_counts / reference.size, cur_counts / current.size


def evidently_fill_zeros(shares: FloatArray) -> FloatArray:
    """Evidently's replacement for empty bins (its ``feel_zeroes``), applied to one sample."""
    smallest = float(shares[shares != 0].min())
    fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(shares == 0, fill, shares)


def _value_counts(sorted_values: FloatArray) -> CategoryCounts:
    keys, counts = np.unique(sorted_values, return_counts=True)
    return CategoryCounts(tuple(float(key) for key in keys), counts.astype(np.int64))
