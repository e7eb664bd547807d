"""*Model overview*: traffic, latency quantiles, errors by code, CPU and memory."""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard

from exporters.dashboards.panels import (
    MODEL,
    RATE,
    SCOPE,
    Layout,
    Query,
    dashboard,
    graph,
    single,
)
from modeltap.config import MonitorConfig

REQUESTS = "modeltap_sidecar_requests_total"
DURATION = "modeltap_sidecar_request_duration_seconds_bucket"
UPSTREAM = "modeltap_sidecar_upstream_duration_seconds_bucket"
# The sidecar processes in front of this model (process_* carry no model label).
SIDECARS = f"on (instance) group by (instance) ({REQUESTS}{{{MODEL}}})"
# KServe names a model's pods after its InferenceService: <model>-predictor-...
PODS = 'pod=~"$model-.*",container!="",container!="POD"'


def _quantile(q: float, metric: str = DURATION, by: str = "le") -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate({metric}{{{SCOPE}}}[{RATE}])))"


def build(config: MonitorConfig) -> Dashboard:
    """The dashboard (a grafana-foundation-sdk model)."""
    uid = config.exporter.datasource_uid
    limits = config.detectors.thresholds
    p99 = limits.latency_p99_ms / 1000 if limits.latency_p99_ms is not None else None
    errors = (
        f'sum by (code) (rate({REQUESTS}{{{SCOPE},code!~"2.."}}[{RATE}])) '
        f"/ scalar(sum(rate({REQUESTS}{{{SCOPE}}}[{RATE}])))"
    )
    error_ratio = (
        f'sum(rate({REQUESTS}{{{SCOPE},code!~"2.."}}[{RATE}])) '
        f"/ sum(rate({REQUESTS}{{{SCOPE}}}[{RATE}]))"
    )
    layout = Layout()
    layout.place(
        single(
            uid,
            "Requests per second",
            Query(f"sum(rate({REQUESTS}{{{SCOPE}}}[{RATE}]))"),
            unit="reqps",
        ),
        6,
        4,
    )
    layout.place(single(uid, "p99 latency", Query(_quantile(0.99)), unit="s", limit=p99), 6, 4)
    layout.place(
        single(uid, "Error rate", Query(error_ratio), unit="percentunit", limit=limits.error_rate),
        6,
        4,
    )
    layout.place(
        single(
            uid,
            "Versions serving",
            Query(f"count(count by (version) ({REQUESTS}{{{MODEL}}}))"),
            unit="none",
        ),
        6,
        4,
    )
    layout.place(
        graph(
            uid,
            "Traffic by version",
            [Query(f"sum by (version) (rate({REQUESTS}{{{SCOPE}}}[{RATE}]))", "{{version}}")],
            unit="reqps",
            stack=True,
            description="Requests answered through the sidecar.",
        )
    )
    layout.place(
        graph(
            uid,
            "Latency quantiles (caller side)",
            [
                Query(_quantile(0.5), "p50"),
                Query(_quantile(0.9), "p90"),
                Query(_quantile(0.99), "p99"),
            ],
            unit="s",
            limit=p99,
            description="From the sidecar's histogram; the line is "
            "detectors.thresholds.latency_p99_ms.",
        )
    )
    layout.place(
        graph(
            uid,
            "Error rate by code",
            [Query(errors, "{{code}}")],
            unit="percentunit",
            limit=limits.error_rate,
            stack=True,
            description="Non-2xx answers as a share of all requests.",
        )
    )
    layout.place(
        graph(
            uid,
            "p99 latency: model server vs. caller",
            [
                Query(_quantile(0.99, UPSTREAM), "model server"),
                Query(_quantile(0.99), "caller"),
            ],
            unit="s",
            limit=p99,
            description="The gap is the sidecar's and the network's share.",
        )
    )
    layout.place(
        graph(
            uid,
            "CPU (Kubernetes, cAdvisor)",
            [
                Query(
                    f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{PODS}}}[{RATE}]))",
                    "{{pod}}",
                )
            ],
            unit="short",
            description="CPU cores used by the model's pods.",
        )
    )
    layout.place(
        graph(
            uid,
            "Memory (Kubernetes, cAdvisor)",
            [Query(f"sum by (pod) (container_memory_working_set_bytes{{{PODS}}})", "{{pod}}")],
            unit="bytes",
            description="Working set of the model's pods.",
        )
    )
    layout.place(
        graph(
            uid,
            "CPU (sidecar processes)",
            [Query(f"rate(process_cpu_seconds_total[{RATE}]) and {SIDECARS}", "{{instance}}")],
            unit="short",
            description="Outside Kubernetes: the sidecars serving this model.",
        )
    )
    layout.place(
        graph(
            uid,
            "Memory (sidecar processes)",
            [Query(f"process_resident_memory_bytes and {SIDECARS}", "{{instance}}")],
            unit="bytes",
        )
    )
    return dashboard(
        "modeltap-overview",
        "Model overview",
        "Traffic, latency, errors and resources of one model.",
        ["serving"],
        layout=layout,
        datasource_uid=uid,
        variables_from=REQUESTS,
    )
