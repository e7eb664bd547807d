"""Confidence-based performance estimation (NannyML's CBPE) for a multiclass classifier.

Each class is treated one-vs-rest: its probability column is calibrated on the reference on
its own (isotonic, kept only when cross-validation says it helps, as for a binary model), and
the calibrated columns are divided by their row sum so that every row sums to 1 again, a row
whose calibrated columns are all 0 becoming uniform (nannyml/performance_estimation/
confidence_based/cbpe.py ``_calibrate_predicted_probabilities``). Accuracy is then the mean
probability of the predicted class; precision, recall, F1 and ROC AUC are the binary CBPE
estimates of each one-vs-rest problem (:mod:`detectors.stats.cbpe`), averaged over the
classes with equal weight (macro), as NannyML's multiclass metrics are.

The sampling errors follow nannyml/sampling_error/multiclass_classification.py: per class, a
reference variance and the share of rows it applies to; a window of n rows gets
``sqrt(sum(variance / (n · share))) / k``, times 1.2 for ROC AUC (NannyML's own inflation).
Unlike the binary F1, a row of the multiclass F1 scores a plain 1 (true positive) or 0.

Labels and predictions are column indices into the probabilities; the profile keeps the
class names in that order. The departures from NannyML are the binary module's (calibration
splits, ties in ROC AUC); the class order changes nothing, every figure being a macro mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectors.stats.bands import Band, Estimate, chunk_bounds, default_chunk_size, reference_band
from detectors.stats.calibration import Isotonic, needs_calibration, rank_auc
from detectors.stats.cbpe import _auc_components, estimated_roc_auc
from detectors.stats.samples import FloatArray
from modeltap.schema import JsonValue

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
IndexArray = npt.NDArray[np.integer]
# NannyML multiplies the multiclass ROC AUC sampling error by this (auroc_sampling_error).
AUC_ERROR_INFLATION = 1.2


@dataclass(frozen=True, slots=True)
class MulticlassCbpeProfile:
    """What multiclass estimation needs from the labelled reference; ``to_json`` stores it.

    ``calibrations`` has one isotonic fit (or None) per class, in ``classes`` order;
    ``components`` holds, per metric, a (variance, share) pair per class (one pair for
    accuracy), a share of 0 marking a class the metric cannot see in the reference.
    """

    classes: tuple[str, ...]
    calibrations: tuple[Isotonic | None, ...]
    components: Mapping[str, tuple[tuple[float, float], ...]]
    bands: Mapping[str, Band]
    reference_size: int
    chunk_size: int

    def probabilities(self, scores: FloatArray) -> FloatArray:
        """Each class calibrated one-vs-rest, then every row renormalised to sum to 1.

        >>> profile = MulticlassCbpeProfile(("a", "b"), (None, None), {}, {}, 1, 1)
        >>> profile.probabilities(np.array([[0.5, 1.5], [0.0, 0.0]])).tolist()
        [[0.25, 0.75], [0.5, 0.5]]
        """
        calibrated = np.column_stack(
            [
                column if calibration is None else calibration.apply(column)
                for calibration, column in zip(self.calibrations, scores.T, strict=True)
            ]
        ).astype(np.float64)
        total = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1.0 / len(self.classes))
        return np.asarray(np.divide(calibrated, total, out=uniform, where=total != 0))

    def sampling_error(self, metric: str, size: int) -> float:
        pairs = self.components[metric]
        if not size or any(share == 0 for _, share in pairs):
            return math.nan
        spread = math.sqrt(sum(variance / (size * share) for variance, share in pairs))
        return spread / len(pairs) * (AUC_ERROR_INFLATION if metric == "roc_auc" else 1.0)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "classes": list(self.classes),
            "calibrations": [
                None if c is None else {"knots": list(c.knots), "values": list(c.values)}
                for c in self.calibrations
            ],
            "components": {
                name: [list(pair) for pair in pairs] for name, pairs in self.components.items()
            },
            "bands": {name: band.to_json() for name, band in self.bands.items()},
            "reference_size": self.reference_size,
            "chunk_size": self.chunk_size,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> MulticlassCbpeProfile:
        return cls(
            classes=tuple(str(name) for name in data["classes"]),
            calibrations=tuple(
                None if c is None else Isotonic(tuple(c["knots"]), tuple(c["values"]))
                for c in data["calibrations"]
            ),
            components={
                name: tuple((float(a), float(b)) for a, b in pairs)
                for name, pairs in data["components"].items()
            },
            bands={name: Band.from_json(band) for name, band in data["bands"].items()},
            reference_size=int(data["reference_size"]),
            chunk_size=int(data["chunk_size"]),
        )


def fit(
    scores: FloatArray,
    labels: IndexArray,
    predicted: IndexArray,
    classes: Sequence[str],
    *,
    chunk_size: int | None = None,
    seed: int = 42,
) -> MulticlassCbpeProfile:
    """Fit multiclass CBPE on a labelled reference: an n-by-k array of class probabilities
    (columns in ``classes`` order), and the true and predicted classes as column indices.

    Every class must occur among the labels (NannyML refuses the reference otherwise).
    ``chunk_size`` cuts the reference into the chunks that give the bands (default: ten).
    """
    _check(scores, predicted, len(classes))
    if labels.shape != predicted.shape:
        raise ValueError("labels and predictions must be of one length")
    if np.unique(labels).size != len(classes) or labels.min() < 0 or labels.max() >= len(classes):
        raise ValueError(f"the reference labels must cover each of the {len(classes)} classes")
    calibrations = tuple(
        Isotonic.fit(column, labels == index)
        if needs_calibration(column, labels == index, seed=seed)
        else None
        for index, column in enumerate(scores.T)
    )
    size = chunk_size or default_chunk_size(labels.size)
    per_chunk = [
        realized(labels[a:b], scores[a:b], predicted[a:b])
        for a, b in chunk_bounds(labels.size, size)
    ]
    return MulticlassCbpeProfile(
        classes=tuple(classes),
        calibrations=calibrations,
        components=_components(scores, labels, predicted),
        bands={
            name: reference_band(
                [chunk[name] for chunk in per_chunk], lower_limit=0.0, upper_limit=1.0
            )
            for name in METRICS
        },
        reference_size=int(labels.size),
        chunk_size=size,
    )


def estimate(
    profile: MulticlassCbpeProfile, scores: FloatArray, predicted: IndexArray
) -> dict[str, Estimate]:
    """Each macro metric estimated for one window, with its sampling error and band.

    >>> pairs = {m: ((0.25, 0.5), (0.25, 0.5)) for m in METRICS} | {"accuracy": ((0.25, 1.0),)}
    >>> bands = {m: Band(0.5, 1.0) for m in METRICS}
    >>> profile = MulticlassCbpeProfile(("a", "b"), (None, None), pairs, bands, 100, 10)
    >>> scores = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    >>> accuracy = estimate(profile, scores, np.array([0, 0, 1, 1]))["accuracy"]
    >>> round(accuracy.value, 3), accuracy.sampling_error, accuracy.alert
    (0.75, 0.25, False)
    """
    _check(scores, predicted, len(profile.classes))
    size = int(predicted.size)
    values = estimated_values(profile.probabilities(scores), scores, predicted) if size else {}
    return {
        name: Estimate.judge(
            name,
            values.get(name),
            profile.sampling_error(name, size),
            profile.bands[name],
            direction="lower",
            size=size,
            limits=(0.0, 1.0),
        )
        for name in METRICS
    }


def estimated_values(
    probabilities: FloatArray, scores: FloatArray, predicted: IndexArray
) -> dict[str, float]:
    """The metrics expected from calibrated ``probabilities``; ``scores`` (uncalibrated) order
    the rows along each class's ROC curve, as in NannyML."""
    rows = np.arange(predicted.size)
    chosen = predicted[:, None] == np.arange(probabilities.shape[1])
    tp = (probabilities * chosen).sum(axis=0)
    fp = chosen.sum(axis=0) - tp
    fn = probabilities.sum(axis=0) - tp
    aucs = [
        estimated_roc_auc(column, raw)
        for column, raw in zip(probabilities.T, scores.T, strict=True)
    ]
    return {
        "accuracy": float(probabilities[rows, predicted].mean()),
        **_macro_rates(tp, fp, fn),
        "roc_auc": float(np.mean(aucs)),
    }


def realized(labels: IndexArray, scores: FloatArray, predicted: IndexArray) -> dict[str, float]:
    """The macro metrics once labels are known, NaN where NannyML leaves them undefined: one
    class among the labels or the predictions, and for ROC AUC any class missing from the labels.

    >>> scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])
    >>> values = realized(np.array([0, 1, 2, 1]), scores, np.array([0, 1, 2, 0]))
    >>> values["accuracy"], values["recall"], values["roc_auc"]
    (0.75, 0.8333333333333334, 1.0)
    """
    k = scores.shape[1]
    classes = np.arange(k)
    truth, chosen = labels[:, None] == classes, predicted[:, None] == classes
    tp = (truth & chosen).sum(axis=0).astype(np.float64)
    fp, fn = chosen.sum(axis=0) - tp, truth.sum(axis=0) - tp
    values = {"accuracy": float(np.mean(labels == predicted)), **_macro_rates(tp, fp, fn)}
    if np.unique(labels).size < 2 or np.unique(predicted).size < 2:
        values = dict.fromkeys(values, math.nan)
    # scikit-learn's roc_auc_score(multi_class="ovr", average="macro"), which NannyML calls.
    every_class = np.unique(labels).size == k
    values["roc_auc"] = (
        float(np.mean([rank_auc(truth[:, c], scores[:, c]) for c in classes]))
        if every_class
        else math.nan
    )
    return values


def _macro_rates(tp: FloatArray, fp: FloatArray, fn: FloatArray) -> dict[str, float]:
    # A class with a zero denominator scores 0, in NannyML's estimates and scikit-learn's
    # zero_division default alike.
    def ratio(top: FloatArray, bottom: FloatArray) -> float:
        safe = np.where(bottom != 0, bottom, 1.0)
        return float(np.mean(np.where(bottom != 0, top / safe, 0.0)))

    return {
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(tp, tp + 0.5 * (fp + fn)),
    }


def _components(
    scores: FloatArray, labels: IndexArray, predicted: IndexArray
) -> dict[str, tuple[tuple[float, float], ...]]:
    size = labels.size
    correct = labels == predicted

    def pair(values: npt.NDArray[np.bool_]) -> tuple[float, float]:
        # An empty group has no spread; its share of 0 makes the sampling error NaN, and the
        # 0.0 keeps the profile's JSON free of NaN.
        return (float(np.var(values)) if values.size else 0.0, values.size / size)

    per_class: dict[str, list[tuple[float, float]]] = {"precision": [], "recall": [], "f1": []}
    auc: list[tuple[float, float]] = []
    for c in range(scores.shape[1]):
        truth, chosen = labels == c, predicted == c
        per_class["precision"].append(pair(correct[chosen]))
        per_class["recall"].append(pair(chosen[truth]))
        per_class["f1"].append(pair(correct[truth | chosen]))
        std, share = _auc_components(scores[:, c], truth)
        auc.append((std**2, share) if math.isfinite(std) else (0.0, 0.0))
    return {
        "accuracy": (pair(correct),),
        **{name: tuple(pairs) for name, pairs in per_class.items()},
        "roc_auc": tuple(auc),
    }


def _check(scores: FloatArray, predicted: IndexArray, k: int) -> None:
    if k < 2 or scores.ndim != 2 or scores.shape[1] != k:
        raise ValueError(f"scores must be an n-by-{k} array, one column per class (at least 2)")
    if scores.shape[0] != predicted.size:
        raise ValueError("scores and predictions must be of one length")
    if predicted.size and (predicted.min() < 0 or predicted.max() >= k):
        raise ValueError(f"predicted classes must be column indices in [0, {k})")
