"""The estimation family: a model's performance before its labels arrive, and once they do.

A binary classifier's window is estimated with CBPE from its scores and predictions, a
multiclass one's with CBPE one-vs-rest from its class probabilities (macro figures), a
regressor's with DLE from its features and predictions, against the states the reference
profile holds (``detectors.estimators``). Each metric is one row, ``estimated_<metric>``;
once at least ``detectors.min_rows`` of the window's rows are labelled, ``realized_<metric>``
sits beside it, computed with the same definitions (NannyML's) and judged by the same
threshold, so the two can be read on one panel.

The threshold is the worse-side bound of the band the metric kept over the reference's
chunks (mean ± 3 standard deviations), or the fixed one configured for it; a row alerts when
its value is strictly past it. NannyML alerts outside the band on either side; here a model
doing better than its reference does not page anyone, and ``details.breach`` still says
when a value left the band upwards.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from detectors.emit import Scope
from detectors.estimators import ESTIMATION, class_indices
from detectors.profile import Profile
from detectors.rows import Rows, class_matrix, coerce_numerical
from detectors.settings import ModelSettings
from detectors.stats import cbpe, cbpe_multiclass, dle
from detectors.stats.bands import Band, Estimate
from modeltap.schema import DetectorResult, Direction, JsonValue

NO_PROFILE = "no reference profile for this model and version; fit one with `monitor reference set`"
REFIT = "the reference profile predates estimation; fit it again with `monitor reference set`"


def results(
    scope: Scope, rows: Rows, profile: Profile | None, settings: ModelSettings
) -> list[DetectorResult]:
    """The estimated metrics of the window and, with enough labels, the realized ones."""
    if not settings.estimation.enabled:
        return []
    classifier = settings.task == "classification"
    first = "estimated_accuracy" if classifier else "estimated_mae"
    estimators = profile.estimators if profile is not None else None
    if profile is None or estimators is None:
        return [_missing(scope, first, NO_PROFILE if profile is None else REFIT)]
    fitted: cbpe_multiclass.MulticlassCbpeProfile | cbpe.CbpeProfile | dle.DleProfile | None
    if classifier:
        fitted = estimators.multiclass if settings.classes else estimators.cbpe
    else:
        fitted = estimators.dle
    if fitted is None:
        return [_missing(scope, first, estimators.notes.get(ESTIMATION, REFIT))]
    if isinstance(fitted, cbpe_multiclass.MulticlassCbpeProfile):
        return _multiclass(scope, rows, fitted, settings)
    if isinstance(fitted, cbpe.CbpeProfile):
        return _classification(scope, rows, fitted, settings)
    return _regression(scope, rows, estimators.matrix(rows), fitted, settings)


def _classification(
    scope: Scope, rows: Rows, profile: cbpe.CbpeProfile, settings: ModelSettings
) -> list[DetectorResult]:
    positive = settings.positive_class
    if rows.score is None or rows.prediction is None:
        return _too_few(scope, cbpe.METRICS, 0, settings, "lower")
    usable = np.isfinite(rows.score) & np.array([p is not None for p in rows.prediction], bool)
    size = int(np.count_nonzero(usable))
    if size < settings.estimation.min_rows:
        return _too_few(scope, cbpe.METRICS, size, settings, "lower")
    scores = rows.score[usable]
    predicted = np.asarray(rows.prediction[usable] == positive, dtype=bool)
    found = [
        _row(scope, "estimated", estimate, settings)
        for estimate in cbpe.estimate(profile, scores, predicted).values()
    ]
    if rows.label is None:
        return found
    labelled = np.array([value is not None for value in rows.label[usable]], dtype=bool)
    count = int(np.count_nonzero(labelled))
    if count < settings.min_rows:
        return found
    truth = np.asarray(rows.label[usable][labelled] == positive, dtype=bool)
    values = cbpe.realized(truth, scores[labelled], predicted[labelled])
    return found + [
        _row(scope, "realized", _judged(name, values[name], profile.bands[name], count), settings)
        for name in cbpe.METRICS
    ]


def _multiclass(
    scope: Scope,
    rows: Rows,
    profile: cbpe_multiclass.MulticlassCbpeProfile,
    settings: ModelSettings,
) -> list[DetectorResult]:
    if rows.class_scores is None or rows.prediction is None:
        return _too_few(scope, cbpe_multiclass.METRICS, 0, settings, "lower")
    # The profile's classes, not the configuration's: the columns it was calibrated on.
    classes = profile.classes
    scores = class_matrix(rows.class_scores, classes)
    predicted = class_indices(rows.prediction, classes)
    usable = np.isfinite(scores).all(axis=1) & (predicted >= 0)
    size = int(np.count_nonzero(usable))
    if size < settings.estimation.min_rows:
        return _too_few(scope, cbpe_multiclass.METRICS, size, settings, "lower")
    scores, predicted = scores[usable], predicted[usable]
    found = [
        _row(scope, "estimated", estimate, settings)
        for estimate in cbpe_multiclass.estimate(profile, scores, predicted).values()
    ]
    if rows.label is None:
        return found
    truth = class_indices(rows.label[usable], classes)
    labelled = truth >= 0
    count = int(np.count_nonzero(labelled))
    if count < settings.min_rows:
        return found
    values = cbpe_multiclass.realized(truth[labelled], scores[labelled], predicted[labelled])
    return found + [
        _row(scope, "realized", _judged(name, values[name], profile.bands[name], count), settings)
        for name in cbpe_multiclass.METRICS
    ]


def _regression(
    scope: Scope,
    rows: Rows,
    matrix: np.typing.NDArray[np.float64],
    profile: dle.DleProfile,
    settings: ModelSettings,
) -> list[DetectorResult]:
    if rows.prediction is None:
        return _too_few(scope, dle.METRICS, 0, settings, "higher")
    predictions = coerce_numerical(pd.Series(rows.prediction, dtype=object))[0]
    size = int(np.count_nonzero(np.isfinite(predictions)))
    if size < settings.estimation.min_rows:
        return _too_few(scope, dle.METRICS, size, settings, "higher")
    found = [
        _row(scope, "estimated", estimate, settings)
        for estimate in dle.estimate(profile, matrix, predictions).values()
    ]
    if rows.label is None:
        return found
    truth = coerce_numerical(pd.Series(rows.label, dtype=object))[0]
    count = int(np.count_nonzero(np.isfinite(truth) & np.isfinite(predictions)))
    if count < settings.min_rows:
        return found
    values = dle.realized(truth, predictions)
    return found + [
        _row(scope, "realized", _judged(name, values[name], profile.bands[name], count), settings)
        for name in dle.METRICS
    ]


def _judged(name: str, value: float, band: Band, size: int) -> Estimate:
    direction: Direction = "higher" if name in dle.METRICS else "lower"
    return Estimate.judge(name, value, None, band, direction=direction, size=size)


def _row(scope: Scope, kind: str, estimate: Estimate, settings: ModelSettings) -> DetectorResult:
    """One metric as a result row, its threshold the configured one or the band's bound."""
    fixed = settings.estimation.thresholds.get(estimate.name)
    band = estimate.band
    bound = band.lower if estimate.direction == "lower" else band.upper
    details: dict[str, JsonValue] = {
        "metric": estimate.name,
        "kind": kind,
        "threshold_source": "configured" if fixed is not None else "reference_band",
        "band_lower": band.lower,
        "band_upper": band.upper,
        "breach": estimate.breach,
    }
    if estimate.sampling_error is not None and math.isfinite(estimate.sampling_error):
        details["sampling_error"] = estimate.sampling_error
    if estimate.confidence is not None:
        details["confidence_lower"], details["confidence_upper"] = estimate.confidence
    return scope.metric(
        f"{kind}_{estimate.name}",
        estimate.value,
        threshold=fixed if fixed is not None else bound,
        direction=estimate.direction,
        size=estimate.size,
        details=details,
    )


def _too_few(
    scope: Scope,
    metrics: tuple[str, ...],
    size: int,
    settings: ModelSettings,
    direction: Direction,
) -> list[DetectorResult]:
    reason = (
        f"{size} rows with a prediction{' and a score' if direction == 'lower' else ''}; "
        f"estimation needs at least {settings.estimation.min_rows} "
        "(detectors.estimation.min_rows)"
    )
    return [
        scope.metric(
            f"estimated_{name}",
            None,
            threshold=settings.estimation.thresholds.get(name),
            direction=direction,
            size=size,
            details={"reason": reason},
        )
        for name in metrics
    ]


def _missing(scope: Scope, detector: str, reason: str) -> DetectorResult:
    direction: Direction = "lower" if detector == "estimated_accuracy" else "higher"
    return scope.metric(detector, None, direction=direction, details={"reason": reason})
