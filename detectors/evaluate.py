"""One model, one window: every detector's results, per version. Pure: arrays in, rows out.

The live runner, ``monitor check`` and (later) ``monitor backfill`` all end up here; only
where the rows come from differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from detectors import operations as ops
from detectors.abtest import ab_results
from detectors.drift_results import drift_results
from detectors.emit import Scope
from detectors.families import DETECTORS
from detectors.performance_results import performance_results
from detectors.profile import Profile
from detectors.quality import Quality, categorical_quality, numerical_quality
from detectors.reference import CategoricalReference, NumericalReference
from detectors.rows import Requests, Rows
from detectors.settings import ModelSettings
from modeltap.schema import DetectorResult


def evaluate(
    settings: ModelSettings,
    scope: Scope,
    *,
    detectors: Iterable[str] = DETECTORS,
    requests: Mapping[str, Requests] | None = None,
    rows: Mapping[str, Rows] | None = None,
    profiles: Mapping[str, Profile | None] | None = None,
    seconds: float | None = None,
) -> list[DetectorResult]:
    """Results of ``detectors`` for every version present in ``requests`` or ``rows``.

    ``seconds`` is how much of the window the data covers (less than its size while it is
    still open); ``profiles`` maps each version to the reference it is scored against.
    """
    wanted = set(detectors)
    unknown = wanted - set(DETECTORS)
    if unknown:
        raise ValueError(f"unknown detector(s) {sorted(unknown)}; known: {', '.join(DETECTORS)}")
    requests = requests or {}
    rows = rows or {}
    profiles = profiles or {}
    span = scope.window.size.total_seconds() if seconds is None else seconds
    results: list[DetectorResult] = []
    for version in sorted(set(requests) | set(rows)):
        here = scope.for_version(version)
        version_rows = rows.get(version)
        profile = profiles.get(version)
        if "operations" in wanted and version in requests:
            results += operations_results(here, requests[version], span, settings)
        if "quality" in wanted and version_rows is not None:
            results += quality_results(here, version_rows, profile, settings)
        if "drift" in wanted and version_rows is not None:
            results += drift_results(here, version_rows, profile, settings)
        if "performance" in wanted and version_rows is not None:
            results += performance_results(here, version_rows, settings)
    if "ab" in wanted:
        results += ab_results(scope, requests, rows, settings)
    return results


def operations_results(
    scope: Scope, requests: Requests, seconds: float, settings: ModelSettings
) -> list[DetectorResult]:
    """Latency quantiles and mean, error rate and throughput of one version."""
    figures = ops.operations(
        requests.latency_ms, requests.status_code, requests.upstream_failed, seconds
    )
    size = figures.requests
    results = [
        scope.metric(
            f"latency_p{q}_ms",
            figures.latency_ms.get(q),
            threshold=settings.threshold("latency_p99_ms") if q == 99 else None,
            size=size,
        )
        for q in ops.QUANTILES
    ]
    results.append(scope.metric("latency_mean_ms", figures.latency_mean_ms, size=size))
    results.append(
        scope.metric(
            "error_rate",
            figures.error_rate,
            threshold=settings.threshold("error_rate"),
            size=size,
            details={"errors": figures.errors},
        )
    )
    results.append(
        # A drop in traffic is what goes wrong (an outage upstream), hence "lower".
        scope.metric(
            "throughput_rps",
            figures.throughput_rps,
            direction="lower",
            size=size,
            details={"seconds": seconds},
        )
    )
    return results


def quality_results(
    scope: Scope, rows: Rows, profile: Profile | None, settings: ModelSettings
) -> list[DetectorResult]:
    """Missing values, type violations and values unlike the reference, per feature."""
    results: list[DetectorResult] = []
    for feature, kind in settings.kinds.items():
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
        results += [
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
    return results
