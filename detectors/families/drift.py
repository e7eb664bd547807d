"""The drift family: each column's tests against the fitted reference, the dataset's drifted
share, the model's output, per segment.

Every numerical column reports KS and PSI, every categorical one chi-square and PSI; one
configurable test per column kind sets the drift flag. The default flag is PSI for both:
a distance whose meaning does not change with the window's size, while a KS or chi-square
p-value on a window of thousands of rows falls below 0.05 for differences far too small to
matter. ``auto`` picks the test as Evidently 0.7 does (``_get_default_stattest``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from detectors.emit import Scope
from detectors.pool import SERIAL, Pool
from detectors.profile import Profile
from detectors.rows import BoolArray, Rows, TextArray, coerce_numerical
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
from detectors.stats.samples import CategoryCounts, FloatArray, NumericalSample
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
    scope: Scope,
    rows: Rows,
    profile: Profile | None,
    settings: ModelSettings,
    *,
    pool: Pool = SERIAL,
) -> list[DetectorResult]:
    """Every feature's tests and flag, the dataset drift share, prediction drift; per segment.

    Every column of the window and of each segment is one task on ``pool``; the rows come
    back in the order of the serial run.
    """
    if profile is None:
        return [_missing(scope, "dataset_drift", NO_PROFILE)]
    parts: list[_Part | DetectorResult] = [_Part(scope, rows, profile, None, frozenset())]
    segment_by = settings.segment_by
    if segment_by is not None and len(rows):
        for value, mask in rows.segments(segment_by, settings.profile.max_segments):
            here = scope.for_segment(f"{segment_by}={value}")
            reference = profile.segments.get(value)
            if reference is None:
                parts.append(
                    _missing(here, "dataset_drift", "the reference has no rows in this segment")
                )
                continue
            parts.append(_Part(here, rows, reference, mask, frozenset({segment_by})))
    columns = [
        _Column(part, feature, kind)
        for part in parts
        if isinstance(part, _Part)
        for feature, kind in _columns(part, settings)
    ]
    judged = iter(pool.map(partial(_judge, settings=settings), columns))
    results: list[DetectorResult] = []
    for part in parts:
        if isinstance(part, _Part):
            results += _assemble(part, settings, [next(judged) for _ in _columns(part, settings)])
        else:
            results.append(part)
    return results


@dataclass(frozen=True, slots=True)
class _Part:
    """The window, or one segment of it: the rows where ``mask`` holds (all without one)."""

    scope: Scope
    rows: Rows
    profile: Profile
    mask: BoolArray | None
    skip: frozenset[str]

    @property
    def size(self) -> int:
        return len(self.rows) if self.mask is None else int(np.count_nonzero(self.mask))

    def numbers(self, values: FloatArray) -> FloatArray:
        return values if self.mask is None else values[self.mask]

    def text(self, values: TextArray) -> TextArray:
        return values if self.mask is None else values[self.mask]


# The model's output, scored after the features: its predictions, and the score beside them.
_PREDICTION, _SCORE = "prediction", "score"


@dataclass(frozen=True, slots=True)
class _Column:
    """A column of a part: a feature and its kind, or the prediction ("") or score."""

    part: _Part
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class _Judged:
    """One column's rows, and its verdict when it counts towards the dataset drift share."""

    rows: list[DetectorResult]
    drift: FeatureDrift | None = None
    output: bool = False


def _columns(part: _Part, settings: ModelSettings) -> list[tuple[str, str]]:
    """The columns a part scores, in the order its rows are written."""
    columns: list[tuple[str, str]] = [
        (name, kind) for name, kind in settings.kinds.items() if name not in part.skip
    ]
    if part.rows.prediction is not None:
        columns.append(("", _PREDICTION))
    if part.rows.score is not None and part.profile.score is not None:
        columns.append(("score", _SCORE))
    return columns


def _judge(column: _Column, *, settings: ModelSettings) -> _Judged:
    """One column's tests against its reference: a pure function, safe on any thread."""
    part, feature, kind = column.part, column.name, column.kind
    scope, rows = part.scope, part.rows
    if kind in (_PREDICTION, _SCORE):
        return _prediction(part, feature, kind, settings)
    reference = part.profile.columns.get(feature)
    if reference is None or reference.kind != kind:
        return _Judged(
            [_missing(scope, "feature_drift", f"no {kind} reference for this feature", feature)]
        )
    current: NumericalSample | CategoryCounts
    if kind == "numerical":
        current = NumericalSample(part.numbers(rows.numbers(feature)))
    else:
        current = rows.counts(feature, part.mask)
    drift = feature_drift(feature, reference, current, settings.drift, settings.registry)
    judged = [scope.stat(test.test, test, feature=feature) for test in drift.tests]
    judged.append(scope.stat("feature_drift", drift.flag, feature=feature, details=_tests(drift)))
    return _Judged(judged, drift)


def _prediction(part: _Part, feature: str, kind: str, settings: ModelSettings) -> _Judged:
    """The model's output against the reference's: predictions, or the score beside them."""
    scope, rows, profile = part.scope, part.rows, part.profile
    reference: ColumnReference | None
    current: NumericalSample | CategoryCounts
    if kind == _SCORE:
        assert rows.score is not None
        reference, current = profile.score, NumericalSample(part.numbers(rows.score))
    else:
        assert rows.prediction is not None
        reference = profile.prediction
        if settings.prediction_kind == "numerical":
            predicted = part.text(rows.prediction)
            current = NumericalSample(coerce_numerical(pd.Series(predicted, dtype=object))[0])
        else:
            current = rows.prediction_counts(part.mask)
    if reference is None:
        missing = _missing(scope, "prediction_drift", "the reference has no predictions", feature)
        return _Judged([missing], output=True)
    drift = feature_drift(
        feature or "prediction", reference, current, settings.drift, settings.registry
    )
    verdict = scope.stat("prediction_drift", drift.flag, feature=feature, details=_tests(drift))
    return _Judged([verdict], output=True)


def _assemble(part: _Part, settings: ModelSettings, judged: list[_Judged]) -> list[DetectorResult]:
    """A part's rows: its features', the dataset drift share, then the model's output."""
    features = [item for item in judged if not item.output]
    results = [row for item in features for row in item.rows]
    verdicts = [item.drift for item in features if item.drift is not None]
    summary = dataset_drift(verdicts, settings.drift.dataset_drift_share)
    share = StatResult(
        test="dataset_drift",
        status="ok" if summary.share is not None else "insufficient_data",
        score=summary.share,
        statistic=None,
        threshold=summary.threshold,
        direction="higher",
        drifted=summary.drifted,
        reference_size=part.profile.rows,
        current_size=part.size,
    )
    results.append(
        part.scope.stat(
            "dataset_drift",
            share,
            details={"drifted_features": list(summary.drifted_features), "judged": summary.judged},
        )
    )
    return results + [row for item in judged if item.output for row in item.rows]


def _tests(drift: FeatureDrift) -> dict[str, object]:
    return {"tests": {test.test: test.score for test in drift.tests}}


def _missing(scope: Scope, detector: str, reason: str, feature: str = "") -> DetectorResult:
    return scope.metric(detector, None, feature=feature, details={"reason": reason})
