"""Which Prometheus series each stored detector result becomes: names, labels, units.

Names follow Prometheus' conventions: base units (seconds, not the detectors' milliseconds),
``_ratio`` for shares, ``_timestamp_seconds`` for moments, HELP on every family. A result
the table does not know is not exported, and a test runs every detector to prove none is
left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from modeltap.schema import DRIFT_TESTS, LatestValue

MV = ("model", "version")
MVF = ("model", "version", "feature")


@dataclass(frozen=True, slots=True)
class Family:
    """One gauge family: its name, HELP text and label names."""

    name: str
    help: str
    labels: tuple[str, ...]


def _family(name: str, text: str, labels: tuple[str, ...]) -> Family:
    return Family(f"modeltap_{name}", text, labels)


LATENCY = _family(
    "window_latency_seconds",
    "Request latency percentile over the newest detector window (from stored requests).",
    (*MV, "percentile"),
)
LATENCY_MEAN = _family(
    "window_latency_mean_seconds", "Mean request latency over the newest window.", MV
)
ERRORS = _family(
    "window_error_ratio", "Share of requests that failed (non-2xx or upstream) in the window.", MV
)
THROUGHPUT = _family(
    "window_requests_per_second", "Requests per second over the newest window.", MV
)
MISSING = _family(
    "feature_missing_ratio", "Share of the window's rows where the feature is missing.", MVF
)
VIOLATIONS = _family(
    "feature_type_violation_ratio",
    "Share of the window's rows with a value of the wrong type.",
    MVF,
)
OUT_OF_RANGE = _family(
    "feature_out_of_range_ratio",
    "Share of a numerical feature's values outside the reference's range.",
    MVF,
)
UNSEEN = _family(
    "feature_unseen_category_ratio",
    "Share of a categorical feature's values the reference never saw.",
    MVF,
)
DRIFT_SCORE = _family(
    "feature_drift_score",
    "Drift test result per feature: a p-value (ks, chisquare, z; lower drifts) or a "
    "distance (psi, jensenshannon, wasserstein; higher drifts).",
    (*MVF, "test"),
)
DRIFTED = _family(
    "feature_drifted", "1 when the feature's deciding drift test says it drifted, else 0.", MVF
)
DATASET_SHARE = _family(
    "dataset_drift_share_ratio", "Share of the model's judged features that drifted.", MV
)
DATASET_DRIFTED = _family(
    "dataset_drifted", "1 when the drifted share reached detectors.drift.dataset_drift_share.", MV
)
PREDICTION_SCORE = _family(
    "prediction_drift_score",
    "Drift of the model's output (prediction, or score) by its deciding test.",
    (*MV, "output", "test"),
)
PREDICTION_DRIFTED = _family(
    "prediction_drifted", "1 when the model's output drifted, else 0.", (*MV, "output")
)
PERFORMANCE = _family(
    "performance_score",
    "Classification quality against late labels: accuracy, precision, recall, f1, roc_auc.",
    (*MV, "metric"),
)
ERROR = _family(
    "performance_error",
    "Regression error against late labels: mae and rmse in the label's units, mape as a ratio.",
    (*MV, "metric"),
)
ESTIMATED = _family(
    "performance_estimated_score",
    "Classification quality estimated before labels arrive (CBPE, kind=estimated) and the "
    "same metric once they have (kind=realized): accuracy, precision, recall, f1, roc_auc.",
    (*MV, "metric", "kind"),
)
ESTIMATED_ERROR = _family(
    "performance_estimated_error",
    "Regression error estimated before labels arrive (DLE, kind=estimated) and once they "
    "have (kind=realized): mae and rmse in the label's units.",
    (*MV, "metric", "kind"),
)
ESTIMATED_THRESHOLD = _family(
    "performance_estimated_threshold",
    "The bound an estimated metric is judged by: the reference chunks' band (mean - 3 sd for "
    "a score, + 3 sd for an error) or the configured detectors.estimation.thresholds.",
    (*MV, "metric"),
)
ESTIMATED_ALERT = _family(
    "performance_estimated_alert",
    "1 when the metric (estimated or realized) is past its threshold on the worse side.",
    (*MV, "metric", "kind"),
)
MULTIVARIATE_SCORE = _family(
    "multivariate_drift_score",
    "Drift of the numerical features together: the mean PCA reconstruction error "
    "(method=reconstruction_error) or a domain classifier's ROC AUC (method=domain_classifier); "
    "higher drifts.",
    (*MV, "method"),
)
MULTIVARIATE_THRESHOLD = _family(
    "multivariate_drift_threshold",
    "The multivariate score's threshold: the reference chunks' band (mean + 3 sd) or the "
    "configured one.",
    (*MV, "method"),
)
MULTIVARIATE_DRIFTED = _family(
    "multivariate_drifted",
    "1 when the multivariate score is past its threshold, else 0.",
    (*MV, "method"),
)
COVERAGE = _family(
    "label_coverage_ratio", "Share of the window's predictions that have a label yet.", MV
)
DELAY = _family("label_delay_seconds", "Median time from prediction to its label's arrival.", MV)
AB_PVALUE = _family(
    "ab_pvalue",
    "Two-sided p-value of a challenger version against the baseline (the busiest version).",
    (*MV, "baseline", "test"),
)
AB_WORSE = _family(
    "ab_worse",
    "1 when the challenger is significantly worse than the baseline at detectors.ab_alpha.",
    (*MV, "baseline", "test"),
)
WINDOW_END = _family(
    "results_window_end_timestamp_seconds",
    "End of the newest window with results for the model and version.",
    MV,
)

RESULT_FAMILIES = (
    LATENCY, LATENCY_MEAN, ERRORS, THROUGHPUT, MISSING, VIOLATIONS, OUT_OF_RANGE, UNSEEN,
    DRIFT_SCORE, DRIFTED, DATASET_SHARE, DATASET_DRIFTED, PREDICTION_SCORE, PREDICTION_DRIFTED,
    PERFORMANCE, ERROR, COVERAGE, DELAY, AB_PVALUE, AB_WORSE, ESTIMATED, ESTIMATED_ERROR,
    ESTIMATED_THRESHOLD, ESTIMATED_ALERT, MULTIVARIATE_SCORE, MULTIVARIATE_THRESHOLD,
    MULTIVARIATE_DRIFTED, WINDOW_END,
)  # fmt: skip

_QUALITY = {
    "missing_ratio": MISSING,
    "type_violation_share": VIOLATIONS,
    "out_of_range_share": OUT_OF_RANGE,
    "unseen_category_share": UNSEEN,
}
CLASSIFICATION = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})
REGRESSION = frozenset({"mae", "rmse", "mape"})
_SERVING = {"error_rate": ERRORS, "throughput_rps": THROUGHPUT, "label_coverage": COVERAGE}
_AB = {"ab_error_rate": "error_rate", "ab_accuracy": "accuracy", "ab_latency": "latency"}
_QUANTILES = {"latency_p50_ms": "50", "latency_p90_ms": "90", "latency_p99_ms": "99"}
MULTIVARIATE = frozenset({"reconstruction_error", "domain_classifier"})

Sample = tuple[Family, tuple[str, ...], float]


def samples(result: LatestValue) -> list[Sample]:
    """The series one result becomes (none for a detector this table does not know).

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> r = LatestValue("m", "v1", "latency_p99_ms", "", t, 250.0, False)
    >>> [(f.name, labels, value) for f, labels, value in samples(r)]
    [('modeltap_window_latency_seconds', ('m', 'v1', '99'), 0.25)]
    """
    return _serving(result) or _data(result) or _outcomes(result) or _estimates(result)


def _serving(result: LatestValue) -> list[Sample]:
    name, score, pair = result.detector, result.score, (result.model, result.version)
    if name in _QUANTILES:
        return [(LATENCY, (*pair, _QUANTILES[name]), score / 1000)]
    if name == "latency_mean_ms":
        return [(LATENCY_MEAN, pair, score / 1000)]
    if name in _SERVING:
        return [(_SERVING[name], pair, score)]
    if name == "label_delay_s":
        return [(DELAY, pair, score)]
    return []


def _data(result: LatestValue) -> list[Sample]:
    name, score, pair = result.detector, result.score, (result.model, result.version)
    feature = (*pair, result.feature)
    if name in _QUALITY:
        return [(_QUALITY[name], feature, score)]
    if name in DRIFT_TESTS and result.feature:
        return [(DRIFT_SCORE, (*feature, name), score)]
    if name == "feature_drift":
        return [(DRIFTED, feature, float(result.alert))]
    if name == "dataset_drift":
        return [(DATASET_SHARE, pair, score), (DATASET_DRIFTED, pair, float(result.alert))]
    if name == "prediction_drift":
        output = (*pair, result.feature or "prediction")
        return [
            (PREDICTION_SCORE, (*output, result.test), score),
            (PREDICTION_DRIFTED, output, float(result.alert)),
        ]
    return []


def _outcomes(result: LatestValue) -> list[Sample]:
    name, score, pair = result.detector, result.score, (result.model, result.version)
    if name in CLASSIFICATION:
        return [(PERFORMANCE, (*pair, name), score)]
    if name in REGRESSION:
        return [(ERROR, (*pair, name), score)]
    if name in _AB:
        labels = (*pair, result.baseline, _AB[name])
        return [(AB_PVALUE, labels, score), (AB_WORSE, labels, float(result.alert))]
    return []


def _estimates(result: LatestValue) -> list[Sample]:
    name, score, pair = result.detector, result.score, (result.model, result.version)
    if name in MULTIVARIATE:
        found: list[Sample] = [
            (MULTIVARIATE_SCORE, (*pair, name), score),
            (MULTIVARIATE_DRIFTED, (*pair, name), float(result.alert)),
        ]
        if result.threshold is not None:
            found.append((MULTIVARIATE_THRESHOLD, (*pair, name), result.threshold))
        return found
    kind, _, metric = name.partition("_")
    if kind not in ("estimated", "realized") or metric not in CLASSIFICATION | REGRESSION:
        return []
    family = ESTIMATED if metric in CLASSIFICATION else ESTIMATED_ERROR
    found = [
        (family, (*pair, metric, kind), score),
        (ESTIMATED_ALERT, (*pair, metric, kind), float(result.alert)),
    ]
    # Estimate and realized value share one threshold: published once, from the estimate.
    if kind == "estimated" and result.threshold is not None:
        found.append((ESTIMATED_THRESHOLD, (*pair, metric), result.threshold))
    return found
