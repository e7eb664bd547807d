"""Performance results of one version in one window, against the labels that have arrived."""

from __future__ import annotations

import numpy as np
import pandas as pd

from detectors import performance as perf
from detectors.drift_results import top_values
from detectors.emit import Scope
from detectors.rows import BoolArray, Rows, TextArray, coerce_numerical
from detectors.settings import ModelSettings
from modeltap.schema import DetectorResult, Direction

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


def performance_results(scope: Scope, rows: Rows, settings: ModelSettings) -> list[DetectorResult]:
    """Label coverage and delay, then the task's metrics once enough rows are labelled."""
    results = _performance(scope, rows, settings)
    segment_by = settings.segment_by
    if segment_by is None or rows.label is None or len(rows) == 0:
        return results
    values = rows.features[segment_by].to_numpy(dtype=object)
    for value in top_values(values, settings.profile.max_segments):
        here = scope.for_segment(f"{segment_by}={value}")
        results += _performance(here, rows.select(values == value), settings)
    return results


def _performance(scope: Scope, rows: Rows, settings: ModelSettings) -> list[DetectorResult]:
    if rows.label is None or rows.prediction is None:
        return []
    total = len(rows)
    labelled = np.array([value is not None for value in rows.label], dtype=bool)
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
        delay = perf.label_delay(rows.ts[labelled], rows.label_received_at[labelled])
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
        usable = labelled & np.array([value is not None for value in prediction], dtype=bool)
        size = int(np.count_nonzero(usable))
        if size < settings.min_rows:
            return _too_few(scope, names, size, settings)
        scores = rows.score[usable] if rows.score is not None else None
        metrics = perf.classification(
            label[usable], prediction[usable], scores, settings.positive_class
        )
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
        errors = perf.regression(truth[usable], predicted[usable])
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
