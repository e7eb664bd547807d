"""Isotonic calibration of a binary classifier's scores, and NannyML's test of whether it helps.

CBPE reads a score as the chance that the row is positive, which holds only for calibrated
scores. NannyML (nannyml/calibration.py) fits scikit-learn's
``IsotonicRegression(out_of_bounds="clip")`` on the reference, but only when
``needs_calibration`` finds that it lowers the expected calibration error (ECE) of rows held
out in cross-validation. Both are written here over numpy and scipy, so the fitted
calibration is two lists of numbers that a reference profile stores as JSON.

The one departure: the ten stratified 10 % hold-outs come from numpy's generator (seed 42),
not from scikit-learn's ``StratifiedShuffleSplit(random_state=42)``, so the held-out rows,
and on borderline data the decision, can differ from NannyML's. Ties are sorted stably.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

from detectors.stats.samples import FloatArray

BoolArray = npt.NDArray[np.bool_]

# NannyML skips calibration when the reference is this well ranked already.
SEPARABLE_AUC = 0.999


@dataclass(frozen=True, slots=True)
class Isotonic:
    """A fitted isotonic calibration: linear between its knots, clipped outside them, as
    scikit-learn's ``IsotonicRegression(out_of_bounds="clip").predict`` is.

    >>> fitted = Isotonic.fit(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1], bool))
    >>> fitted.apply(np.array([0.0, 0.25, 0.5])).tolist()
    [0.0, 0.5, 1.0]
    """

    knots: tuple[float, ...]
    values: tuple[float, ...]

    @classmethod
    def fit(cls, scores: FloatArray, labels: BoolArray) -> Isotonic:
        """Pool-adjacent-violators over the distinct scores, each weighted by its rows."""
        order = np.argsort(scores, kind="stable")
        ordered = scores[order]
        first = np.flatnonzero(np.append(True, ordered[1:] != ordered[:-1]))
        distinct, counts = ordered[first], np.diff(np.append(first, ordered.size))
        means = np.add.reduceat(labels[order].astype(np.float64), first) / counts
        fitted = optimize.isotonic_regression(means, weights=counts, increasing=True).x
        # Inner points of a flat stretch change nothing under linear interpolation; scikit-learn
        # drops them the same way.
        keep = np.ones(fitted.size, dtype=bool)
        keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
        return cls(tuple(distinct[keep].tolist()), tuple(fitted[keep].tolist()))

    def apply(self, scores: FloatArray) -> FloatArray:
        knots = np.asarray(self.knots, dtype=np.float64)
        return np.interp(scores, knots, np.asarray(self.values, dtype=np.float64)).astype(
            np.float64
        )


def needs_calibration(
    scores: FloatArray, labels: BoolArray, *, splits: int = 10, bins: int = 10, seed: int = 42
) -> bool:
    """Whether isotonic calibration lowers the expected calibration error of held-out rows.

    Ten stratified splits hold out 10 % each; the held-out rows of all splits are pooled and
    the ECE over equal-count bins is compared before and after calibration (NannyML's test).
    """
    if len(np.unique(labels)) < 2 or rank_auc(labels, scores) > SEPARABLE_AUC:
        return False
    rng = np.random.default_rng(seed)
    held_out = math.ceil(0.1 * scores.size)
    before, after, truth = [], [], []
    for _ in range(splits):
        test = np.concatenate(
            [
                rng.permutation(members)[: round(held_out * members.size / scores.size)]
                for members in (np.flatnonzero(~labels), np.flatnonzero(labels))
            ]
        )
        train = np.ones(scores.size, dtype=bool)
        train[test] = False
        calibration = Isotonic.fit(scores[train], labels[train])
        before.append(scores[test])
        after.append(calibration.apply(scores[test]))
        truth.append(labels[test])
    pooled = np.concatenate(truth)
    edges = _bin_edges(pooled.size, bins)
    return _ece(pooled, np.concatenate(before), edges) > _ece(pooled, np.concatenate(after), edges)


def _bin_edges(size: int, bins: int) -> list[tuple[int, int]]:
    # nannyml/calibration.py _get_bin_index_edges: equal-width index ranges, the last one
    # absorbing the remainder; fewer bins when there are fewer than two rows per bin.
    if size <= 2 * bins:
        bins = size // 2
        if bins < 2:
            raise ValueError(f"{size} rows cannot be split into two calibration bins")
    edges = list(range(0, size + 1, size // bins))
    edges[-1] = size
    return list(itertools.pairwise(edges))


def _ece(labels: BoolArray, probabilities: FloatArray, edges: list[tuple[int, int]]) -> float:
    order = np.argsort(probabilities, kind="stable")
    p, y = probabilities[order], labels[order]
    return sum(
        (b - a) / p.size * abs(float(p[a:b].mean()) - float(y[a:b].mean())) for a, b in edges
    )


def rank_auc(labels: BoolArray, scores: FloatArray) -> float:
    """ROC AUC in its Mann-Whitney form, ties counted half; NaN without both classes.

    >>> rank_auc(np.array([False, True, True]), np.array([0.1, 0.8, 0.8]))
    1.0
    """
    positives = int(np.count_nonzero(labels))
    negatives = labels.size - positives
    if not positives or not negatives:
        return math.nan
    rank_sum = float(stats.rankdata(scores)[labels].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
