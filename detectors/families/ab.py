"""A/B between versions serving in the same window: error rate, accuracy and latency.

The version with the most requests is the baseline (ties: the first name); every other
version is compared with it and its results carry its own version, with the baseline named
in the details. The tests are two-sided; a comparison alerts when the difference is
significant at ``ab_alpha`` *and* the challenger is the worse one (a significantly better
challenger is good news, not an alert).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from detectors.emit import Scope
from detectors.families.operations import is_error
from detectors.rows import Requests, Rows, present
from detectors.settings import ModelSettings
from detectors.stats.outcome import StatResult
from detectors.stats.proportions import mann_whitney, two_proportions
from modeltap.schema import DetectorResult, JsonValue


def baseline_version(sizes: Mapping[str, int]) -> str:
    """The version that served the most (ties broken by name).

    >>> baseline_version({"v2": 10, "v1": 90})
    'v1'
    """
    return min(sizes, key=lambda version: (-sizes[version], version))


def results(
    scope: Scope,
    requests: Mapping[str, Requests],
    rows: Mapping[str, Rows],
    settings: ModelSettings,
) -> list[DetectorResult]:
    """Each challenger against the baseline; nothing when only one version served."""
    versions = set(requests) | set(rows)
    if len(versions) < 2:
        return []
    sizes = {v: len(requests[v]) if v in requests else len(rows[v]) for v in versions}
    baseline = baseline_version(sizes)
    results: list[DetectorResult] = []
    for challenger in sorted(versions - {baseline}):
        here = scope.for_version(challenger)
        if baseline in requests and challenger in requests:
            results += _serving(here, requests[baseline], requests[challenger], baseline, settings)
        if settings.task == "classification" and baseline in rows and challenger in rows:
            results.append(_accuracy(here, rows[baseline], rows[challenger], baseline, settings))
    return results


def _serving(
    scope: Scope, base: Requests, challenger: Requests, baseline: str, settings: ModelSettings
) -> list[DetectorResult]:
    sizes = (len(base), len(challenger))
    if min(sizes) < settings.min_rows:
        return [
            _too_few(scope, name, sizes, baseline, settings)
            for name in ("ab_error_rate", "ab_latency")
        ]
    base_errors = int(np.count_nonzero(is_error(base.status_code, base.upstream_failed)))
    errors = int(np.count_nonzero(is_error(challenger.status_code, challenger.upstream_failed)))
    rates = two_proportions(base_errors, sizes[0], errors, sizes[1])
    errors_result = _result(
        scope,
        "ab_error_rate",
        test="two_proportion_z",
        pvalue=rates.pvalue,
        statistic=rates.z,
        sizes=sizes,
        worse=rates.difference > 0,
        settings=settings,
        details={
            "baseline": baseline,
            "baseline_rate": base_errors / sizes[0],
            "rate": errors / sizes[1],
            "difference": rates.difference,
            "cohens_h": rates.cohens_h,
        },
    )
    # Only measured latencies are ranked (NaN: nobody measured the call's latency).
    base_latency = base.latency_ms[~np.isnan(base.latency_ms)]
    latency = challenger.latency_ms[~np.isnan(challenger.latency_ms)]
    measured = (int(base_latency.size), int(latency.size))
    if min(measured) < settings.min_rows:
        return [errors_result, _too_few(scope, "ab_latency", measured, baseline, settings)]
    ranks = mann_whitney(base_latency, latency)
    return [
        errors_result,
        _result(
            scope,
            "ab_latency",
            test="mann_whitney_u",
            pvalue=ranks.pvalue,
            statistic=ranks.u,
            sizes=measured,
            worse=ranks.rank_biserial > 0,
            settings=settings,
            details={
                "baseline": baseline,
                "rank_biserial": ranks.rank_biserial,
                "median_difference_ms": ranks.median_difference,
            },
        ),
    ]


def _accuracy(
    scope: Scope, base: Rows, challenger: Rows, baseline: str, settings: ModelSettings
) -> DetectorResult:
    base_correct, base_size = _correct(base)
    correct, size = _correct(challenger)
    sizes = (base_size, size)
    if min(sizes) < settings.min_rows:
        return _too_few(scope, "ab_accuracy", sizes, baseline, settings)
    test = two_proportions(base_correct, base_size, correct, size)
    return _result(
        scope,
        "ab_accuracy",
        test="two_proportion_z",
        pvalue=test.pvalue,
        statistic=test.z,
        sizes=sizes,
        worse=test.difference < 0,
        settings=settings,
        details={
            "baseline": baseline,
            "baseline_accuracy": base_correct / base_size,
            "accuracy": correct / size,
            "difference": test.difference,
            "cohens_h": test.cohens_h,
        },
    )


def _correct(rows: Rows) -> tuple[int, int]:
    if rows.label is None or rows.prediction is None:
        return 0, 0
    # Compared in numpy's loop over the objects: a list of a million pairs was 100 MB.
    both = present(rows.label) & present(rows.prediction)
    correct = np.equal(rows.label, rows.prediction) & both
    return int(np.count_nonzero(correct)), int(np.count_nonzero(both))


def _result(
    scope: Scope,
    detector: str,
    *,
    test: str,
    pvalue: float,
    statistic: float,
    sizes: tuple[int, int],
    worse: bool,
    settings: ModelSettings,
    details: Mapping[str, JsonValue],
) -> DetectorResult:
    verdict = StatResult(
        test=test,
        status="ok",
        score=pvalue,
        statistic=statistic,
        threshold=settings.ab_alpha,
        direction="lower",
        drifted=pvalue < settings.ab_alpha and worse,
        reference_size=sizes[0],
        current_size=sizes[1],
        details={"significant": pvalue < settings.ab_alpha},
    )
    return scope.stat(detector, verdict, details=details)


def _too_few(
    scope: Scope, detector: str, sizes: tuple[int, int], baseline: str, settings: ModelSettings
) -> DetectorResult:
    return scope.metric(
        detector,
        None,
        threshold=settings.ab_alpha,
        direction="lower",
        details={
            "baseline": baseline,
            "reason": f"needs {settings.min_rows} rows per version, got {sizes[0]} and {sizes[1]}",
        },
    )
