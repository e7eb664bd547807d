"""Confidence-based performance estimation (NannyML's CBPE) for a binary classifier.

Before the labels arrive, a calibrated score is the chance that the row is positive, so each
row adds its probability to the expected true or false positives (when predicted positive)
or false negatives or true negatives (when predicted negative); accuracy, precision, recall
and F1 follow from that expected confusion matrix, and ROC AUC from the same probabilities
walked in score order (nannyml/performance_estimation/confidence_based/metrics.py).

The reference, which has labels, is fitted once into a :class:`CbpeProfile` that serialises
to JSON: the isotonic calibration, kept only when cross-validation says it lowers the expected
calibration error (:mod:`detectors.stats.calibration`), the per-metric sampling-error
components (nannyml/sampling_error/binary_classification.py: a reference standard deviation,
scaled by 1/sqrt(n · the share of rows the metric looks at)) and the band each metric kept
over the reference's chunks.

Where this departs from NannyML, on purpose: the cross-validation splits (see the
calibration module); tied scores form one step of the estimated ROC curve (NannyML's order
among ties is whatever quicksort leaves); the ROC AUC sampling error counts a tie as half
(NannyML leaves the lowest-scored row out when it is positive). NannyML also rounds the
expected counts along the ROC curve to 5 decimals; here they are not rounded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectors.stats.bands import Band, Estimate, chunk_bounds, default_chunk_size, reference_band
from detectors.stats.calibration import BoolArray, Isotonic, needs_calibration, rank_auc
from detectors.stats.samples import FloatArray
from modeltap.schema import JsonValue

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


@dataclass(frozen=True, slots=True)
class ExpectedConfusion:
    """The confusion matrix the calibrated probabilities expect (counts, not rates)."""

    true_positive: float
    false_positive: float
    false_negative: float
    true_negative: float


def expected_confusion(probabilities: FloatArray, predicted: BoolArray) -> ExpectedConfusion:
    """Each row's chance of being positive, added to the cells its prediction can land in.

    >>> cells = expected_confusion(np.array([0.75, 0.25, 0.5]), np.array([True, False, False]))
    >>> cells.true_positive, cells.false_positive, cells.false_negative, cells.true_negative
    (0.75, 0.25, 0.75, 1.25)
    """
    positive = probabilities[predicted]
    negative = probabilities[~predicted]
    return ExpectedConfusion(
        true_positive=float(positive.sum()),
        false_positive=float((1.0 - positive).sum()),
        false_negative=float(negative.sum()),
        true_negative=float((1.0 - negative).sum()),
    )


@dataclass(frozen=True, slots=True)
class CbpeProfile:
    """What estimation needs from the labelled reference; ``to_json`` stores it in a profile.

    ``components`` holds, per metric, the reference standard deviation and the share of rows
    it applies to; the sampling error of a window of n rows is ``std / sqrt(n · share)``.
    """

    calibration: Isotonic | None
    components: Mapping[str, tuple[float, float]]
    bands: Mapping[str, Band]
    reference_size: int
    chunk_size: int

    def probabilities(self, scores: FloatArray) -> FloatArray:
        return scores if self.calibration is None else self.calibration.apply(scores)

    def sampling_error(self, metric: str, size: int) -> float:
        std, share = self.components[metric]
        return std / math.sqrt(size * share) if size and share else math.nan

    def to_json(self) -> dict[str, JsonValue]:
        calibration = None
        if self.calibration is not None:
            calibration = {
                "knots": list(self.calibration.knots),
                "values": list(self.calibration.values),
            }
        return {
            "calibration": calibration,
            "components": {name: list(pair) for name, pair in self.components.items()},
            "bands": {name: band.to_json() for name, band in self.bands.items()},
            "reference_size": self.reference_size,
            "chunk_size": self.chunk_size,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> CbpeProfile:
        stored = data["calibration"]
        calibration = None
        if stored is not None:
            calibration = Isotonic(tuple(stored["knots"]), tuple(stored["values"]))
        return cls(
            calibration=calibration,
            components={name: (float(a), float(b)) for name, (a, b) in data["components"].items()},
            bands={name: Band.from_json(band) for name, band in data["bands"].items()},
            reference_size=int(data["reference_size"]),
            chunk_size=int(data["chunk_size"]),
        )


def fit(
    scores: FloatArray,
    labels: BoolArray,
    predicted: BoolArray,
    *,
    chunk_size: int | None = None,
    seed: int = 42,
) -> CbpeProfile:
    """Fit CBPE on a labelled reference: positive-class scores, true labels and predictions.

    ``chunk_size`` cuts the reference into the chunks whose realized metrics give the bands
    (default: NannyML's ten chunks).
    """
    if scores.size == 0 or not (scores.size == labels.size == predicted.size):
        raise ValueError("scores, labels and predictions must be non-empty and of one length")
    calibration = (
        Isotonic.fit(scores, labels) if needs_calibration(scores, labels, seed=seed) else None
    )
    size = chunk_size or default_chunk_size(scores.size)
    per_chunk = [
        realized(labels[a:b], scores[a:b], predicted[a:b])
        for a, b in chunk_bounds(scores.size, size)
    ]
    return CbpeProfile(
        calibration=calibration,
        components=_components(scores, labels, predicted),
        bands={
            name: reference_band(
                [chunk[name] for chunk in per_chunk], lower_limit=0.0, upper_limit=1.0
            )
            for name in METRICS
        },
        reference_size=int(scores.size),
        chunk_size=size,
    )


def estimate(profile: CbpeProfile, scores: FloatArray, predicted: BoolArray) -> dict[str, Estimate]:
    """Each metric estimated for one window of scores and predictions, with its sampling error.

    >>> same = {m: (0.5, 1.0) for m in METRICS}, {m: Band(0.5, 1.0) for m in METRICS}
    >>> profile = CbpeProfile(None, *same, reference_size=100, chunk_size=10)
    >>> result = estimate(profile, np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0], bool))
    >>> accuracy = result["accuracy"]
    >>> round(accuracy.value, 3), accuracy.sampling_error, accuracy.alert
    (0.825, 0.25, False)
    """
    probabilities = profile.probabilities(scores)
    cells = expected_confusion(probabilities, predicted)
    values = {**_rates(cells), "roc_auc": estimated_roc_auc(probabilities, scores)}
    size = int(scores.size)
    return {
        name: Estimate.judge(
            name,
            values[name] if size else None,
            profile.sampling_error(name, size),
            profile.bands[name],
            direction="lower",
            size=size,
            limits=(0.0, 1.0),
        )
        for name in METRICS
    }


def estimated_roc_auc(probabilities: FloatArray, scores: FloatArray) -> float:
    """The ROC AUC expected when each row is positive with its calibrated probability.

    >>> estimated_roc_auc(np.array([1.0, 1.0, 0.0, 0.0]), np.array([0.9, 0.8, 0.3, 0.1]))
    1.0
    """
    if scores.size == 0:
        return math.nan
    order = np.argsort(-scores, kind="stable")
    expected_tp = np.cumsum(probabilities[order])
    expected_fp = np.arange(1, scores.size + 1) - expected_tp
    ordered = scores[order]
    last = np.append(ordered[1:] != ordered[:-1], True)  # one step per distinct score
    tp, fp = np.append(0.0, expected_tp[last]), np.append(0.0, expected_fp[last])
    if tp[-1] <= 0 or fp[-1] <= 0:
        return math.nan
    return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))


def realized(labels: BoolArray, scores: FloatArray, predicted: BoolArray) -> dict[str, float]:
    """The metrics once labels are known, NaN where NannyML leaves them undefined (one class
    among the labels, or among the predictions for precision, recall and F1).

    >>> realized(np.array([True, False]), np.array([0.7, 0.4]), np.array([True, True]))["f1"]
    nan
    """
    tp = float(np.count_nonzero(labels & predicted))
    fp = float(np.count_nonzero(~labels & predicted))
    fn = float(np.count_nonzero(labels & ~predicted))
    tn = float(np.count_nonzero(~labels & ~predicted))
    values = {**_rates(ExpectedConfusion(tp, fp, fn, tn)), "roc_auc": rank_auc(labels, scores)}
    if len(np.unique(labels)) < 2 or len(np.unique(predicted)) < 2:
        values.update(precision=math.nan, recall=math.nan, f1=math.nan)
    return values


def _rates(cells: ExpectedConfusion) -> dict[str, float]:
    tp, fp, fn, tn = (
        cells.true_positive,
        cells.false_positive,
        cells.false_negative,
        cells.true_negative,
    )
    total = tp + fp + fn + tn
    # NannyML's estimates answer 0 where a denominator is 0.
    return {
        "accuracy": (tp + tn) / total if total else math.nan,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": tp / (tp + 0.5 * (fp + fn)) if tp + fp + fn else 0.0,
    }


def _components(
    scores: FloatArray, labels: BoolArray, predicted: BoolArray
) -> dict[str, tuple[float, float]]:
    size = labels.size
    correct = labels == predicted
    tp = np.count_nonzero(labels & predicted)
    wrong = np.count_nonzero(~correct)
    # F1 per row: a true positive scores the factor that makes the rows' mean the F1, an
    # error 0, and true negatives do not take part.
    f1_rows = np.concatenate([np.ones(tp), np.zeros(wrong)])
    f1_rows *= f1_rows.size / (tp + 0.5 * wrong) if f1_rows.size else 0.0
    return {
        "accuracy": (_std(correct), 1.0),
        "precision": (_std(correct[predicted]), np.count_nonzero(predicted) / size),
        "recall": (_std(predicted[labels]), np.count_nonzero(labels) / size),
        "f1": (_std(f1_rows), f1_rows.size / size),
        "roc_auc": _auc_components(scores, labels),
    }


def _auc_components(scores: FloatArray, labels: BoolArray) -> tuple[float, float]:
    # The AUC is the mean, over the rarer class, of the share of the other class each row
    # outranks (its placement); NannyML turns the spread of placements into the error.
    rare, oriented = (labels, scores) if labels.mean() <= 0.5 else (~labels, -scores)
    other = np.sort(oriented[~rare])
    if other.size == 0 or not rare.any():
        return math.nan, 0.0
    mine = oriented[rare]
    placements = (np.searchsorted(other, mine, "left") + np.searchsorted(other, mine, "right")) / 2
    return _std(placements / other.size), float(rare.mean())


def _std(values: npt.NDArray[np.generic]) -> float:
    return float(np.std(values.astype(np.float64))) if values.size else math.nan
