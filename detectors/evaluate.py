"""One model, one window: every family's results, per version. Pure: arrays in, rows out.

The live runner, ``monitor check`` and ``monitor backfill`` all end up here; only where the
rows come from differs. Each family is one module of ``detectors/families`` with a
``results`` function; A/B runs across versions, every other family per version.
Quality and drift score their features on a pool of ``settings.workers`` threads, opened
for the call and closed with it; their rows are the same as with one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from detectors.emit import Scope
from detectors.families import (
    ab,
    drift,
    estimation,
    multivariate,
    operations,
    performance,
    quality,
)
from detectors.pool import Pool
from detectors.profile import Profile
from detectors.rows import Requests, Rows
from detectors.settings import ModelSettings
from modeltap.schema import FAMILIES, DetectorResult


def evaluate(
    settings: ModelSettings,
    scope: Scope,
    *,
    detectors: Iterable[str] = FAMILIES,
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
    unknown = wanted - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown detector(s) {sorted(unknown)}; known: {', '.join(FAMILIES)}")
    requests = requests or {}
    rows = rows or {}
    profiles = profiles or {}
    span = scope.window.size.total_seconds() if seconds is None else seconds
    results: list[DetectorResult] = []
    pooled = bool(rows) and bool(wanted & {"quality", "drift"})
    with Pool.threads(settings.workers if pooled else 1) as pool:
        for version in sorted(set(requests) | set(rows)):
            here = scope.for_version(version)
            version_rows = rows.get(version)
            profile = profiles.get(version)
            if "operations" in wanted and version in requests:
                results += operations.results(here, requests[version], span, settings)
            if "quality" in wanted and version_rows is not None:
                results += quality.results(here, version_rows, profile, settings, pool=pool)
            if "drift" in wanted and version_rows is not None:
                results += drift.results(here, version_rows, profile, settings, pool=pool)
            if "performance" in wanted and version_rows is not None:
                results += performance.results(here, version_rows, settings)
            if "estimation" in wanted and version_rows is not None:
                results += estimation.results(here, version_rows, profile, settings)
            if "multivariate" in wanted and version_rows is not None:
                results += multivariate.results(here, version_rows, profile, settings)
    if "ab" in wanted:
        results += ab.results(scope, requests, rows, settings)
    return results
