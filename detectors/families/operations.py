"""The operations family: serving figures of one window (latency quantiles, error rate,
throughput) and the result rows they become."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from detectors.emit import Scope
from detectors.rows import Requests
from detectors.settings import ModelSettings
from detectors.stats.samples import FloatArray, order_free_mean
from modeltap.schema import DetectorResult

QUANTILES = (50, 90, 99)


@dataclass(frozen=True, slots=True)
class Operations:
    """Latency in milliseconds; errors are non-2xx answers and failed upstream calls."""

    requests: int
    errors: int
    latency_ms: dict[int, float]
    latency_mean_ms: float | None
    throughput_rps: float

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def is_error(
    status_code: npt.NDArray[np.int64], upstream_failed: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Which requests failed: status outside 200-299, or the model server never answered."""
    result: npt.NDArray[np.bool_] = (status_code < 200) | (status_code >= 300) | upstream_failed
    return result


def operations(
    latency_ms: FloatArray,
    status_code: npt.NDArray[np.int64],
    upstream_failed: npt.NDArray[np.bool_],
    seconds: float,
) -> Operations:
    """Quantiles (numpy's linear interpolation), mean, errors and requests per second.

    >>> ops = operations(np.array([10.0, 20.0, 30.0]), np.array([200, 500, 200]),
    ...                  np.array([False, False, True]), 60.0)
    >>> ops.latency_ms[50], round(ops.error_rate, 3), ops.throughput_rps
    (20.0, 0.667, 0.05)
    >>> operations(np.array([10.0, np.nan]), np.array([200, 599]),
    ...            np.array([False, False]), 60.0).latency_ms[50]
    10.0
    """
    count = int(latency_ms.size)
    errors = int(np.count_nonzero(is_error(status_code, upstream_failed)))
    if count == 0:
        return Operations(0, 0, {}, None, 0.0)
    # A latency nobody measured (NaN: a log line without one, a call never answered)
    # counts as a request and an error where it failed, but is no latency figure.
    measured = latency_ms[~np.isnan(latency_ms)]
    levels: list[float] = (
        [float(value) for value in np.percentile(measured, QUANTILES)] if measured.size else []
    )
    return Operations(
        requests=count,
        errors=errors,
        latency_ms=dict(zip(QUANTILES, levels, strict=False)),
        latency_mean_ms=order_free_mean(measured) if measured.size else None,
        throughput_rps=count / seconds if seconds > 0 else 0.0,
    )


def results(
    scope: Scope, requests: Requests, seconds: float, settings: ModelSettings
) -> list[DetectorResult]:
    """Latency quantiles and mean, error rate and throughput of one version."""
    figures = operations(
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
        for q in QUANTILES
    ]
    results.append(scope.metric("latency_mean_ms", figures.latency_mean_ms, size=size))
    error_rate = scope.metric(
        "error_rate",
        figures.error_rate,
        threshold=settings.threshold("error_rate"),
        size=size,
        details={"errors": figures.errors},
    )
    if 0 < size < settings.min_rows:
        # One failure in three requests is no 33% error rate to page anyone for: the share is
        # kept, but it does not alert below the window's minimum size.
        error_rate = replace(
            error_rate,
            status="insufficient_data",
            alert=False,
            details={
                **error_rate.details,
                "reason": f"{size} requests; error_rate alerts from {settings.min_rows} "
                "(detectors.min_rows)",
            },
        )
    results.append(error_rate)
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
