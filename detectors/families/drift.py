"""The drift family: each column's tests against the fitted reference, the dataset's drifted
share, the model's output, per segment.

Every numerical column reports KS and PSI, every categorical one chi-square and PSI; one
configurable test per column kind sets the drift flag. The default flag is PSI for both:
a distance whose meaning does not change with the window's size, while a KS or chi-square
p-value on a window of thousands of rows falls below 0.05 for differences far too small to
matter. ``auto`` picks the test as Evidently 0.7 does (``_get_default_stattest``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from detectors.emit import Scope
from detectors.profile import Profile
from detectors.rows import Rows, category_counts, coerce_numerical
from detectors.settings import DriftSettings, ModelSettings
from detectors.stats.binning import distinct_count
from detectors.stats.outcome import StatResult
from detectors.stats.reference import OTHER, CategoricalReference, ColumnReference, Kind
from detectors.stats.registry import (
    CategoricalInput,
    NumericalInput,
    Options,
    Registry,
    TestInput,
)
from detectors.stats.samples import CategoryCounts, NumericalSample
from modeltap.schema import DetectorResult

REPORTED: Mapping[Kind, tuple[str, ...]] = {
    "numerical": ("ks", "psi"),
    "categorical": ("chisquare", "psi"),
}
CATEGORY_TESTS = frozenset({"chisquare", "z"})
# Evidently's rule switches at a reference of 1000 rows and at 2 and 5 distinct values.
AUTO_SMALL_REFERENCE = 1000
AUTO_FEW_VALUES = 5
AUTO_BINARY = 2


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """A column's reported tests and the one result that decides whether it drifted."""

    feature: str
    kind: Kind
    flag: StatResult
    tests: tuple[StatResult, ...]


@dataclass(frozen=True, slots=True)
class DatasetDrift:
    """The share of judged columns that drifted, and whether that share reaches the limit."""

    share: float | None
    drifted: bool
    drifted_features: tuple[str, ...]
    judged: int
    threshold: float


def auto_method(kind: Kind, reference_size: int, distinct_values: int) -> str:
    """Evidently 0.7's choice of test for a column (``get_stattest`` with no method given).

    >>> auto_method("numerical", 5000, 100), auto_method("categorical", 500, 2)
    ('wasserstein', 'z')
    """
    if reference_size <= AUTO_SMALL_REFERENCE:
        if kind == "numerical" and distinct_values > AUTO_FEW_VALUES:
            return "ks"
        return "chisquare" if distinct_values > AUTO_BINARY else "z"
    if kind == "numerical" and distinct_values > AUTO_FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"


def feature_drift(
    feature: str,
    reference: ColumnReference,
    current: NumericalSample | CategoryCounts,
    settings: DriftSettings,
    registry: Registry,
) -> FeatureDrift:
    """Run the reported tests and the flagging test on one column."""
    kind = reference.kind
    method = settings.method(kind)
    if method == "auto":
        method = auto_method(kind, reference.size, _distinct(reference, current))
    options = Options(psi_mode=settings.psi_mode)
    results: dict[str, StatResult] = {}
    for name in (*REPORTED[kind], method):
        if name in results:
            continue
        test = registry.get(name)
        results[name] = test.run(
            _input(reference, current, as_categories=name in CATEGORY_TESTS),
            threshold=settings.thresholds.get(name),
            options=options,
            min_reference_size=settings.min_reference_size,
            min_current_size=settings.min_current_size,
        )
    return FeatureDrift(feature, kind, results[method], tuple(results.values()))


def dataset_drift(features: Sequence[FeatureDrift], share_threshold: float) -> DatasetDrift:
    """Share of columns whose flag says drift, among those with enough data (Evidently: >=).

    >>> dataset_drift([], 0.5).share is None
    True
    """
    judged = [item for item in features if item.flag.status == "ok"]
    drifted = tuple(item.feature for item in judged if item.flag.drifted)
    if not judged:
        return DatasetDrift(None, False, (), 0, share_threshold)
    share = len(drifted) / len(judged)
    return DatasetDrift(share, share >= share_threshold, drifted, len(judged), share_threshold)


def current_counts(reference: CategoricalReference, counts: CategoryCounts) -> CategoryCounts:
    """The window's counts, with categories folded into ``other`` when the reference capped them.

    A capped reference no longer knows which rare categories it saw, so a category outside
    its kept list counts as one of those rare ones rather than as new.
    """
    if not reference.other:
        return counts
    kept = set(reference.counts.keys)
    folded: dict[object, int] = {}
    for key, count in counts.as_dict().items():
        target = key if key in kept else OTHER
        folded[target] = folded.get(target, 0) + count
    return CategoryCounts.from_mapping(folded)


def _input(
    reference: ColumnReference,
    current: NumericalSample | CategoryCounts,
    *,
    as_categories: bool,
) -> TestInput:
    if isinstance(reference, CategoricalReference):
        if not isinstance(current, CategoryCounts):
            raise TypeError("a categorical reference needs category counts")
        return CategoricalInput(reference.categories(), current_counts(reference, current))
    if not isinstance(current, NumericalSample):
        raise TypeError("a numerical reference needs a numerical sample")
    if as_categories:
        return CategoricalInput(reference.as_sample().categories(), current.categories())
    return NumericalInput(reference, current)


def _distinct(reference: ColumnReference, current: NumericalSample | CategoryCounts) -> int:
    """Distinct values in reference and window together (Evidently's ``nunique`` of both).

    The rule only compares it with 2 and 5, so once the window alone holds more than five
    distinct numbers that count is enough and the union need not be built.
    """
    if isinstance(reference, CategoricalReference):
        keys = set(reference.categories().keys)
        if isinstance(current, CategoryCounts):
            keys |= {key for key, count in current.as_dict().items() if count}
        return len(keys)
    if not isinstance(current, NumericalSample):
        raise TypeError("a numerical reference needs a numerical sample")
    in_window = distinct_count(current.sorted)
    if in_window > AUTO_FEW_VALUES:
        return in_window
    return int(np.union1d(np.unique(reference.sample), np.unique(current.sorted)).size)


NO_PROFILE = "no reference profile for this model and version; fit one with `monitor reference set`"


def results(
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
