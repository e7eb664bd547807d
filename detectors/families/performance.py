"""The performance family: model quality against late ground truth, as labels arrive.

Definitions follow scikit-learn's so numbers can be checked against it: precision and recall
are 0 when their denominator is (``zero_division=0``); without a configured positive class
they are macro averages over every class seen in labels or predictions; ROC AUC is the
Mann-Whitney form, (rank sum of positives - n+(n+ + 1)/2) / (n+ n-), with average ranks for
ties; MAPE divides by max(|y|, machine epsilon).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from detectors.emit import Scope
from detectors.rows import BoolArray, Rows, TextArray, coerce_numerical, present
from detectors.settings import ModelSettings
from detectors.stats.samples import FloatArray, order_free_mean
from modeltap.schema import DetectorResult, Direction


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
        mae=order_free_mean(np.abs(errors)),
        rmse=math.sqrt(order_free_mean(errors**2)),
        mape=order_free_mean(np.abs(errors) / denominator),
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


# (detector, threshold key, direction that is worse)
CLASSIFICATION: tuple[tuple[str, str | None, Direction], ...] = (
    ("accuracy", "accuracy_min", "lower"),
    ("precision", None, "lower"),
    ("recall", None, "lower"),
    ("f1", "f1_min", "lower"),
    ("roc_auc", None, "lower"),
)
REGRESSION: tuple[tuple[str, str | None, Direction], ...] = (
    ("mae", "mae_max", "higher"),
    ("rmse", "rmse_max", "higher"),
    ("mape", None, "higher"),
)


def results(scope: Scope, rows: Rows, settings: ModelSettings) -> list[DetectorResult]:
    """Label coverage and delay, then the task's metrics once enough rows are labelled."""
    results = _performance(scope, rows, settings)
    segment_by = settings.segment_by
    if segment_by is None or rows.label is None or len(rows) == 0:
        return results
    # Each segment's outcomes only: its features are not read here, and copying them per
    # segment was most of a 1M-row window's peak memory (150 MB over three segments).
    outcomes = rows.without_features()
    for value, mask in rows.segments(segment_by, settings.profile.max_segments):
        here = scope.for_segment(f"{segment_by}={value}")
        results += _performance(here, outcomes.select(mask), settings)
    return results


def _performance(scope: Scope, rows: Rows, settings: ModelSettings) -> list[DetectorResult]:
    if rows.label is None or rows.prediction is None:
        return []
    total = len(rows)
    labelled = present(rows.label)
    count = int(np.count_nonzero(labelled))
    results = [
        scope.metric(
            "label_coverage",
            count / total if total else None,
            threshold=settings.threshold("label_coverage_min"),
            direction="lower",
            size=total,
            details={"labelled": count},
        )
    ]
    delay = None
    if rows.ts is not None and rows.label_received_at is not None:
        delay = label_delay(rows.ts[labelled], rows.label_received_at[labelled])
    results.append(
        scope.metric(
            "label_delay_s",
            delay.median if delay else None,
            size=count,
            details={"p90_s": delay.p90, "max_s": delay.maximum} if delay else {},
        )
    )
    return results + _metrics(scope, rows, (rows.label, rows.prediction), labelled, settings)


def _metrics(
    scope: Scope,
    rows: Rows,
    outcomes: tuple[TextArray, TextArray],
    labelled: BoolArray,
    settings: ModelSettings,
) -> list[DetectorResult]:
    label, prediction = outcomes
    names = CLASSIFICATION if settings.task == "classification" else REGRESSION
    values: dict[str, float | None]
    if settings.task == "classification":
        usable = labelled & present(prediction)
        size = int(np.count_nonzero(usable))
        if size < settings.min_rows:
            return _too_few(scope, names, size, settings)
        scores = rows.score[usable] if rows.score is not None else None
        metrics = classification(label[usable], prediction[usable], scores, settings.positive_class)
        values = {
            "accuracy": metrics.accuracy,
            "precision": metrics.precision,
            "recall": metrics.recall,
            "f1": metrics.f1,
            "roc_auc": metrics.roc_auc,
        }
        details: dict[str, object] = {"average": metrics.average}
    else:
        truth = coerce_numerical(pd.Series(label, dtype=object))[0]
        predicted = coerce_numerical(pd.Series(prediction, dtype=object))[0]
        usable = labelled & np.isfinite(truth) & np.isfinite(predicted)
        size = int(np.count_nonzero(usable))
        if size < settings.min_rows:
            return _too_few(scope, names, size, settings)
        errors = regression(truth[usable], predicted[usable])
        values = {"mae": errors.mae, "rmse": errors.rmse, "mape": errors.mape}
        details = {}
    return [
        scope.metric(
            name,
            values[name],
            threshold=settings.threshold(key) if key else None,
            direction=direction,
            size=size,
            details=details,
        )
        for name, key, direction in names
        if name != "roc_auc" or values[name] is not None or rows.score is not None
    ]


def _too_few(
    scope: Scope,
    names: tuple[tuple[str, str | None, Direction], ...],
    size: int,
    settings: ModelSettings,
) -> list[DetectorResult]:
    reason = f"{size} labelled rows; performance needs at least {settings.min_rows}"
    return [
        scope.metric(
            name,
            None,
            threshold=settings.threshold(key) if key else None,
            direction=direction,
            size=size,
            details={"reason": reason},
        )
        for name, key, direction in names
        if name != "roc_auc"
    ]
