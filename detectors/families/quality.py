"""The quality family: per column, missing values, type violations and values unlike the
reference, and the result rows they become.

Each numerical column is counted with boolean masks rather than a filtered copy of its
values, and each column is one task on the pool the window is scored with.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from detectors.emit import Scope
from detectors.pool import SERIAL, Pool
from detectors.profile import Profile
from detectors.rows import Rows
from detectors.settings import ModelSettings
from detectors.stats.reference import CategoricalReference, Kind, NumericalReference
from detectors.stats.samples import CategoryCounts, FloatArray
from modeltap.schema import DetectorResult


@dataclass(frozen=True, slots=True)
class Quality:
    """Counts and shares for one column.

    ``missing_ratio`` and ``violation_share`` are shares of all rows; ``outside_share`` is
    the share of usable values outside the reference's range (numerical) or among
    categories the reference never saw (categorical), or None without a reference.
    """

    rows: int
    missing: int
    violations: int
    outside: int | None
    usable: int

    @property
    def missing_ratio(self) -> float | None:
        return self.missing / self.rows if self.rows else None

    @property
    def violation_share(self) -> float | None:
        return self.violations / self.rows if self.rows else None

    @property
    def outside_share(self) -> float | None:
        if self.outside is None or not self.usable:
            return None
        return self.outside / self.usable


def numerical_quality(
    values: FloatArray, violations: int, reference: NumericalReference | None
) -> Quality:
    """``values`` holds NaN for rows without a usable number (missing or of the wrong type).

    >>> ref = NumericalReference(3, 0, 0, 0.0, 10.0, 5.0, 1.0, *(np.empty(0),) * 3)
    >>> numerical_quality(np.array([1.0, 11.0, np.nan, np.nan]), 1, ref).outside_share
    0.5
    """
    rows = int(values.size)
    finite = np.isfinite(values)
    usable = int(np.count_nonzero(finite))
    outside = None
    if reference is not None and reference.size:
        beyond = (values < reference.minimum) | (values > reference.maximum)
        outside = int(np.count_nonzero(beyond & finite))
    return Quality(rows, rows - usable - violations, violations, outside, usable)


def categorical_quality(
    counts: CategoryCounts, rows: int, violations: int, reference: CategoricalReference | None
) -> Quality:
    """Categories the reference never saw count as outside (its kept list, when capped).

    >>> ref = CategoricalReference(2, 0, 0, CategoryCounts.from_mapping({"a": 2}), 0)
    >>> categorical_quality(CategoryCounts.from_mapping({"a": 1, "z": 1}), 3, 0, ref).outside
    1
    """
    usable = counts.size
    outside = None
    if reference is not None and reference.size:
        known = set(reference.counts.keys)
        outside = sum(count for key, count in counts.as_dict().items() if key not in known)
    return Quality(rows, rows - usable - violations, violations, outside, usable)


def results(
    scope: Scope,
    rows: Rows,
    profile: Profile | None,
    settings: ModelSettings,
    *,
    pool: Pool = SERIAL,
) -> list[DetectorResult]:
    """Missing values, type violations and values unlike the reference, per feature."""
    work = partial(_feature, scope=scope, rows=rows, profile=profile, settings=settings)
    return [row for rows_of in pool.map(work, settings.kinds.items()) for row in rows_of]


def _feature(
    column: tuple[str, Kind],
    *,
    scope: Scope,
    rows: Rows,
    profile: Profile | None,
    settings: ModelSettings,
) -> list[DetectorResult]:
    feature, kind = column
    reference = profile.columns.get(feature) if profile is not None else None
    violations = rows.violations.get(feature, 0)
    quality: Quality
    if kind == "numerical":
        numeric_ref = reference if isinstance(reference, NumericalReference) else None
        quality = numerical_quality(rows.numbers(feature), violations, numeric_ref)
        outside_name, outside_threshold = "out_of_range_share", "out_of_range_max"
    else:
        category_ref = reference if isinstance(reference, CategoricalReference) else None
        quality = categorical_quality(rows.counts(feature), len(rows), violations, category_ref)
        outside_name, outside_threshold = "unseen_category_share", "unseen_category_max"
    counts = {
        "rows": quality.rows,
        "missing": quality.missing,
        "violations": quality.violations,
    }
    return [
        scope.metric(
            "missing_ratio",
            quality.missing_ratio,
            threshold=settings.threshold("missing_ratio_max"),
            feature=feature,
            size=quality.rows,
            details=counts,
        ),
        scope.metric(
            "type_violation_share",
            quality.violation_share,
            threshold=settings.threshold("type_violation_max"),
            feature=feature,
            size=quality.rows,
            details=counts,
        ),
        scope.metric(
            outside_name,
            quality.outside_share,
            threshold=settings.threshold(outside_threshold),
            feature=feature,
            size=quality.usable,
            details={"outside": quality.outside, "reference": reference is not None},
        ),
    ]
