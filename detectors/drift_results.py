"""Drift results of one version in one window: per feature, dataset, prediction, segments."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from detectors.drift import FeatureDrift, dataset_drift, feature_drift
from detectors.emit import Scope
from detectors.outcome import StatResult
from detectors.profile import Profile
from detectors.reference import ColumnReference
from detectors.rows import Rows, category_counts, coerce_numerical
from detectors.samples import CategoryCounts, NumericalSample
from detectors.settings import ModelSettings
from modeltap.schema import DetectorResult

NO_PROFILE = "no reference profile for this model and version; fit one with `monitor reference set`"


def drift_results(
    scope: Scope, rows: Rows, profile: Profile | None, settings: ModelSettings
) -> list[DetectorResult]:
    """Every feature's tests and flag, the dataset drift share, prediction drift; per segment."""
    if profile is None:
        return [_missing(scope, "dataset_drift", NO_PROFILE)]
    results = _drift(scope, rows, profile, settings, skip=())
    segment_by = settings.segment_by
    if segment_by is None or len(rows) == 0:
        return results
    values = rows.features[segment_by].to_numpy(dtype=object)
    for value in top_values(values, settings.profile.max_segments):
        here = scope.for_segment(f"{segment_by}={value}")
        reference = profile.segments.get(value)
        if reference is None:
            results.append(
                _missing(here, "dataset_drift", "the reference has no rows in this segment")
            )
            continue
        results += _drift(
            here, rows.select(values == value), reference, settings, skip={segment_by}
        )
    return results


def top_values(values: np.ndarray[tuple[int], np.dtype[np.object_]], limit: int) -> list[str]:
    """The ``limit`` most frequent values (ties by value), missing ones left out."""
    counts = pd.Series(values, dtype=object).value_counts(dropna=True)
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return [str(value) for value, _ in ranked[:limit]]


def _drift(
    scope: Scope, rows: Rows, profile: Profile, settings: ModelSettings, skip: Collection[str]
) -> list[DetectorResult]:
    results: list[DetectorResult] = []
    judged: list[FeatureDrift] = []
    for feature, kind in settings.kinds.items():
        if feature in skip:
            continue
        reference = profile.columns.get(feature)
        if reference is None or reference.kind != kind:
            results.append(
                _missing(scope, "feature_drift", f"no {kind} reference for this feature", feature)
            )
            continue
        current = rows.sample(feature) if kind == "numerical" else rows.counts(feature)
        drift = feature_drift(feature, reference, current, settings.drift, settings.registry)
        results += [scope.stat(test.test, test, feature=feature) for test in drift.tests]
        results.append(
            scope.stat("feature_drift", drift.flag, feature=feature, details=_tests(drift))
        )
        judged.append(drift)
    summary = dataset_drift(judged, settings.drift.dataset_drift_share)
    share = StatResult(
        test="dataset_drift",
        status="ok" if summary.share is not None else "insufficient_data",
        score=summary.share,
        statistic=None,
        threshold=summary.threshold,
        direction="higher",
        drifted=summary.drifted,
        reference_size=profile.rows,
        current_size=len(rows),
    )
    results.append(
        scope.stat(
            "dataset_drift",
            share,
            details={"drifted_features": list(summary.drifted_features), "judged": summary.judged},
        )
    )
    results += _prediction_drift(scope, rows, profile, settings)
    return results


def _prediction_drift(
    scope: Scope, rows: Rows, profile: Profile, settings: ModelSettings
) -> list[DetectorResult]:
    results: list[DetectorResult] = []
    pairs: list[tuple[str, ColumnReference | None, NumericalSample | CategoryCounts | None]] = []
    if rows.prediction is not None:
        current: NumericalSample | CategoryCounts
        if settings.prediction_kind == "numerical":
            current = NumericalSample(coerce_numerical(pd.Series(rows.prediction, dtype=object))[0])
        else:
            current = category_counts(rows.prediction)
        pairs.append(("", profile.prediction, current))
    if rows.score is not None and profile.score is not None:
        pairs.append(("score", profile.score, NumericalSample(rows.score)))
    for feature, reference, sample in pairs:
        if reference is None or sample is None:
            results.append(
                _missing(scope, "prediction_drift", "the reference has no predictions", feature)
            )
            continue
        drift = feature_drift(
            feature or "prediction", reference, sample, settings.drift, settings.registry
        )
        results.append(
            scope.stat("prediction_drift", drift.flag, feature=feature, details=_tests(drift))
        )
    return results


def _tests(drift: FeatureDrift) -> dict[str, object]:
    return {"tests": {test.test: test.score for test in drift.tests}}


def _missing(scope: Scope, detector: str, reason: str, feature: str = "") -> DetectorResult:
    return scope.metric(detector, None, feature=feature, details={"reason": reason})
