"""The alert catalogue: every alert modeltap ships, with its PromQL built from the config.

A threshold is written once: the same ``detectors.thresholds`` (and per-model overrides)
the detectors compare against become the numbers in these expressions. A model whose
override differs gets a rule of its own (``model=~"churn"``), the rest share the default
(``model!~"churn"``); a threshold left empty generates no rule, as the detectors then
never alert either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from modeltap.config import MonitorConfig
from modeltap.errors import ConfigError

Severity = Literal["critical", "warning"]
MIN = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: what it watches, how bad it is, how long it must hold, where its runbook is."""

    name: str
    group: str
    severity: Severity
    wait: timedelta
    summary: str
    description: str
    # PromQL with {sel} for the model selector and {value} for the threshold.
    expr: str
    # The threshold's source: a key of detectors.thresholds, or a function of the config.
    threshold: str | Callable[[MonitorConfig], float] | None = None
    # How the threshold is written in PromQL (x scale) and for people (unit: s or %).
    scale: float = 1.0
    unit: Literal["s", "%", ""] = ""

    @property
    def anchor(self) -> str:
        """The README heading this alert's runbook is under (GitHub's anchor spelling)."""
        return "runbook-" + self.name.lower()


def _stale_after(config: MonitorConfig) -> float:
    # Three missed intervals: one late run is normal under load, three are not.
    return 3 * config.detectors.interval.total_seconds()


ALERTS: tuple[Alert, ...] = (
    Alert(
        "ModeltapHighLatencyP99", "modeltap.serving", "warning", 5 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: p99 latency above {threshold}",
        "p99 request latency through the sidecar over the last 5 minutes is "
        "{{ $value | humanizeDuration }} (threshold {threshold}).",
        "histogram_quantile(0.99, sum by (model, version, le) "
        "(rate(modeltap_sidecar_request_duration_seconds_bucket{sel}[5m]))) > {value}",
        "latency_p99_ms", 0.001, "s",
    ),
    Alert(
        "ModeltapHighErrorRate", "modeltap.serving", "critical", 5 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: error rate above {threshold}",
        "{{ $value | humanizePercentage }} of requests failed (non-2xx, or the model server "
        "did not answer) over 5 minutes; threshold {threshold}.",
        'sum by (model, version) (rate(modeltap_sidecar_requests_total{code!~"2..",sel}[5m]))'
        " / sum by (model, version) (rate(modeltap_sidecar_requests_total{sel}[5m])) > {value}",
        "error_rate", unit="%",
    ),
    Alert(
        "ModeltapAccuracyLow", "modeltap.performance", "warning", 15 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: accuracy below {threshold}",
        "Accuracy against the labels that have arrived is {{ $value | printf \"%.3f\" }} "
        "(threshold {threshold}).",
        'modeltap_performance_score{metric="accuracy",sel} < {value}', "accuracy_min",
    ),
    Alert(
        "ModeltapF1Low", "modeltap.performance", "warning", 15 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: F1 below {threshold}",
        "F1 against the labels that have arrived is {{ $value | printf \"%.3f\" }} "
        "(threshold {threshold}).",
        'modeltap_performance_score{metric="f1",sel} < {value}', "f1_min",
    ),
    Alert(
        "ModeltapRmseHigh", "modeltap.performance", "warning", 15 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: RMSE above {threshold}",
        "RMSE against the labels that have arrived is {{ $value | printf \"%.3f\" }} "
        "(threshold {threshold}).",
        'modeltap_performance_error{metric="rmse",sel} > {value}', "rmse_max",
    ),
    Alert(
        "ModeltapMaeHigh", "modeltap.performance", "warning", 15 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: MAE above {threshold}",
        "MAE against the labels that have arrived is {{ $value | printf \"%.3f\" }} "
        "(threshold {threshold}).",
        'modeltap_performance_error{metric="mae",sel} > {value}', "mae_max",
    ),
    Alert(
        "ModeltapLabelCoverageLow", "modeltap.performance", "warning", 30 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: few predictions have labels",
        "Only {{ $value | humanizePercentage }} of the window's predictions have a label "
        "(threshold {threshold}); performance figures rest on too little.",
        "modeltap_label_coverage_ratio{sel} < {value}", "label_coverage_min", unit="%",
    ),
    Alert(
        "ModeltapEstimatedPerformanceDrop", "modeltap.performance", "warning", 15 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: estimated {{ $labels.metric }} past "
        "its threshold",
        "Before the labels arrive, {{ $labels.metric }} is estimated at "
        "{{ $value | printf \"%.3f\" }}, past the band the reference's chunks kept "
        "(or detectors.estimation.thresholds).",
        'modeltap_performance_estimated_score{kind="estimated",sel} and on (model, version, '
        'metric) (modeltap_performance_estimated_alert{kind="estimated",sel} == 1)',
    ),
    Alert(
        "ModeltapFeatureDrift", "modeltap.drift", "warning", 15 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: feature {{ $labels.feature }} drifted",
        "The deciding drift test (detectors.drift.*_method and its threshold) says "
        "{{ $labels.feature }} no longer looks like the reference.",
        "modeltap_feature_drifted{sel} == 1",
    ),
    Alert(
        "ModeltapDatasetDrift", "modeltap.drift", "critical", 15 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: {{ $value | humanizePercentage }} "
        "of features drifted",
        "At least {threshold} of the judged features drifted in the newest window.",
        "modeltap_dataset_drift_share_ratio{sel} >= {value}",
        lambda config: config.detectors.drift.dataset_drift_share, unit="%",
    ),
    Alert(
        "ModeltapPredictionDrift", "modeltap.drift", "warning", 15 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: the model's {{ $labels.output }} drifted",
        "The distribution of the model's {{ $labels.output }} moved away from the reference.",
        "modeltap_prediction_drifted{sel} == 1",
    ),
    Alert(
        "ModeltapMultivariateDrift", "modeltap.drift", "warning", 15 * MIN,
        "{{ $labels.model }} {{ $labels.version }}: the features drifted together "
        "({{ $labels.method }})",
        "The {{ $labels.method }} score is {{ $value | printf \"%.3f\" }}, past its threshold: "
        "the numerical features' joint distribution (their correlations) left the reference's.",
        "modeltap_multivariate_drift_score{sel} and on (model, version, method) "
        "(modeltap_multivariate_drifted{sel} == 1)",
    ),
    Alert(
        "ModeltapCaptureDropping", "modeltap.pipeline", "critical", MIN,
        "{{ $labels.instance }}: the sidecar is dropping captured events",
        "{{ $value | printf \"%.0f\" }} events were lost in 5 minutes: the memory queue and "
        "the disk spool are both full.",
        "increase(modeltap_capture_dropped_events_total[5m]) > 0",
    ),
    Alert(
        "ModeltapSpoolGrowing", "modeltap.pipeline", "warning", 10 * MIN,
        "{{ $labels.instance }}: captured events pile up on the disk spool",
        "The spool holds {{ $value | humanize1024 }}B and keeps growing: the sink (Kafka or "
        "the database) is down or too slow.",
        "modeltap_capture_spool_bytes > 0 and deriv(modeltap_capture_spool_bytes[10m]) > 0",
    ),
    Alert(
        "ModeltapDetectorStale", "modeltap.pipeline", "warning", 5 * MIN,
        "{{ $labels.model }}/{{ $labels.detector }}: no successful detector run lately",
        "The newest successful run is {{ $value | humanizeDuration }} old (threshold "
        "{threshold}, three detectors.interval); is monitor detect running?",
        "modeltap_detector_staleness_seconds{sel} > {value}", _stale_after, unit="s",
    ),
    Alert(
        "ModeltapDetectorFailing", "modeltap.pipeline", "warning", 10 * MIN,
        "{{ $labels.model }}/{{ $labels.detector }}: the detector keeps failing",
        "{{ $value | printf \"%.0f\" }} runs in a row failed; the error is in the "
        "detector_runs table and monitor detect's log.",
        "modeltap_detector_consecutive_failures{sel} > 0",
    ),
    Alert(
        "ModeltapTargetDown", "modeltap.pipeline", "critical", 2 * MIN,
        "{{ $labels.job }} {{ $labels.instance }} is down",
        "Prometheus cannot scrape {{ $labels.instance }}: the process is down or unreachable.",
        'up{job=~"{job}"} == 0',
    ),
)  # fmt: skip

NAMES = tuple(alert.name for alert in ALERTS)


def wait_for(alert: Alert, config: MonitorConfig) -> timedelta:
    """The alert's ``for``: exporter.alert_for overrides the catalogue's default."""
    unknown = sorted(set(config.exporter.alert_for) - set(NAMES))
    if unknown:
        raise ConfigError(
            f"exporter.alert_for.{unknown[0]}: unknown alert; known: {', '.join(NAMES)}"
        )
    return config.exporter.alert_for.get(alert.name, alert.wait)


def variants(alert: Alert, config: MonitorConfig) -> list[tuple[str, float | None]]:
    """(model matcher, threshold) pairs: one per distinct per-model value, then the default."""
    if alert.threshold is None:
        return [("", None)]
    if callable(alert.threshold):
        return [("", alert.threshold(config))]
    key = alert.threshold
    default = getattr(config.detectors.thresholds, key)
    overridden: dict[float | None, list[str]] = {}
    for model in config.models:
        if key in model.thresholds and model.thresholds[key] != default:
            overridden.setdefault(model.thresholds[key], []).append(model.name)
    found: list[tuple[str, float | None]] = [
        (f'model=~"{_alternatives(names)}"', value)
        for value, names in overridden.items()
        if value is not None
    ]
    if default is not None:
        others = [name for names in overridden.values() for name in names]
        found.append((f'model!~"{_alternatives(others)}"' if others else "", default))
    return found


def _alternatives(names: list[str]) -> str:
    # Model names are [A-Za-z0-9_.-]: only the dot means something in a regex.
    return "|".join(name.replace(".", "\\\\.") for name in sorted(names))
