"""Model quality against late ground truth: classification and regression metrics, coverage.

Definitions follow scikit-learn's so numbers can be checked against it: precision and recall
are 0 when their denominator is (``zero_division=0``); without a configured positive class
they are macro averages over every class seen in labels or predictions; ROC AUC is the
Mann-Whitney form, (rank sum of positives - n+(n+ + 1)/2) / (n+ n-), with average ranks for
ties; MAPE divides by max(|y|, machine epsilon).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from detectors.samples import FloatArray

TextArray = npt.NDArray[np.object_]


@dataclass(frozen=True, slots=True)
class Classification:
    """Metrics over the labelled rows of a window."""

    size: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float | None
    average: str  # "binary" (for the positive class) or "macro"


@dataclass(frozen=True, slots=True)
class Regression:
    """Errors over the labelled rows of a window."""

    size: int
    mae: float
    rmse: float
    mape: float


def classification(
    labels: TextArray,
    predictions: TextArray,
    scores: FloatArray | None = None,
    positive: str | None = None,
) -> Classification:
    """Accuracy, precision, recall, F1 and (with scores and a positive class) ROC AUC.

    Labels and predictions are compared as text, the form both have in JSON.

    >>> m = classification(np.array(["1", "0", "1", "1"], dtype=object),
    ...                    np.array(["1", "0", "0", "1"], dtype=object), positive="1")
    >>> m.accuracy, m.precision, round(m.recall, 3)
    (0.75, 1.0, 0.667)
    """
    if labels.size == 0:
        raise ValueError("no labelled rows")
    correct = labels == predictions
    accuracy = float(np.mean(correct))
    if positive is not None:
        precision, recall, f1 = _binary(labels == positive, predictions == positive)
        average = "binary"
    else:
        classes = sorted(set(labels.tolist()) | set(predictions.tolist()))
        per_class = np.array([_binary(labels == c, predictions == c) for c in classes])
        precision, recall, f1 = (float(value) for value in per_class.mean(axis=0))
        average = "macro"
    auc = None
    if scores is not None and positive is not None:
        auc = roc_auc(labels == positive, scores)
    return Classification(int(labels.size), accuracy, precision, recall, f1, auc, average)


def _binary(
    actual: npt.NDArray[np.bool_], predicted: npt.NDArray[np.bool_]
) -> tuple[float, float, float]:
    true_positive = int(np.count_nonzero(actual & predicted))
    predicted_positive = int(np.count_nonzero(predicted))
    actual_positive = int(np.count_nonzero(actual))
    precision = true_positive / predicted_positive if predicted_positive else 0.0
    recall = true_positive / actual_positive if actual_positive else 0.0
    total = precision + recall
    return precision, recall, (2 * precision * recall / total if total else 0.0)


def roc_auc(positive: npt.NDArray[np.bool_], scores: FloatArray) -> float | None:
    """Area under the ROC curve, or None when one class is absent or scores are missing.

    >>> roc_auc(np.array([False, True, True]), np.array([0.1, 0.8, 0.4]))
    1.0
    """
    usable = np.isfinite(scores)
    positive, scores = positive[usable], scores[usable]
    n_positive = int(np.count_nonzero(positive))
    n_negative = int(positive.size) - n_positive
    if n_positive == 0 or n_negative == 0:
        return None
    ranks = stats.rankdata(scores)
    rank_sum = float(ranks[positive].sum())
    return (rank_sum - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)


def regression(labels: FloatArray, predictions: FloatArray) -> Regression:
    """MAE, RMSE and MAPE (as a fraction, not a percentage).

    >>> regression(np.array([1.0, 2.0]), np.array([2.0, 2.0]))
    Regression(size=2, mae=0.5, rmse=0.7071067811865476, mape=0.5)
    """
    if labels.size == 0:
        raise ValueError("no labelled rows")
    errors = predictions - labels
    denominator = np.maximum(np.abs(labels), np.finfo(np.float64).eps)
    return Regression(
        size=int(labels.size),
        mae=float(np.mean(np.abs(errors))),
        rmse=float(np.sqrt(np.mean(errors**2))),
        mape=float(np.mean(np.abs(errors) / denominator)),
    )


@dataclass(frozen=True, slots=True)
class LabelDelay:
    """Seconds from prediction to the label's arrival, over the labelled rows."""

    median: float
    p90: float
    maximum: float


def label_delay(predicted_at: FloatArray, received_at: FloatArray) -> LabelDelay | None:
    """Delays from epoch seconds; None without labels.

    >>> label_delay(np.array([0.0, 0.0]), np.array([60.0, 120.0])).median
    90.0
    """
    delays = received_at - predicted_at
    delays = delays[np.isfinite(delays)]
    if delays.size == 0:
        return None
    median, p90 = np.percentile(delays, [50, 90])
    return LabelDelay(float(median), float(p90), float(delays.max()))
