"""Drift of one column and of a whole dataset, against a fitted reference.

Every numerical column reports KS and PSI, every categorical one chi-square and PSI; one
configurable test per column kind sets the drift flag. The default flag is PSI for both:
a distance whose meaning does not change with the window's size, while a KS or chi-square
p-value on a window of thousands of rows falls below 0.05 for differences far too small to
matter. ``auto`` picks the test as Evidently 0.7 does (``_get_default_stattest``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from detectors.binning import distinct_count
from detectors.outcome import StatResult
from detectors.reference import OTHER, CategoricalReference, ColumnReference, Kind
from detectors.registry import (
    CategoricalInput,
    NumericalInput,
    Options,
    PsiMode,
    Registry,
    TestInput,
)
from detectors.samples import CategoryCounts, NumericalSample

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
class DriftSettings:
    """How drift is judged; built once from ``detectors.drift`` in the configuration."""

    numerical_method: str = "psi"
    categorical_method: str = "psi"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    psi_mode: PsiMode = "quantile"
    dataset_drift_share: float = 0.5
    min_reference_size: int = 30
    min_current_size: int = 100

    def method(self, kind: Kind) -> str:
        return self.numerical_method if kind == "numerical" else self.categorical_method


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
