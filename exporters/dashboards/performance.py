"""*Model performance*: quality against late labels, label coverage and delay, A/B."""

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
    listing,
)
from modeltap.config import MonitorConfig

REQUESTS = "modeltap_sidecar_requests_total"
ESTIMATED = "modeltap_performance_estimated_score"
ESTIMATED_ERROR = "modeltap_performance_estimated_error"
THRESHOLD = "modeltap_performance_estimated_threshold"


def build(config: MonitorConfig) -> Dashboard:
    """The dashboard (a grafana-foundation-sdk model)."""
    uid = config.exporter.datasource_uid
    limits = config.detectors.thresholds
    layout = Layout()
    layout.place(
        graph(
            uid,
            "Accuracy and F1 (classification)",
            [
                Query(
                    f'modeltap_performance_score{{{SCOPE},metric=~"accuracy|f1"}}',
                    "{{metric}} {{version}}",
                )
            ],
            unit="percentunit",
            limit=limits.accuracy_min,
            bad_below=True,
            description="Against the labels that have arrived; the line is "
            "detectors.thresholds.accuracy_min (models may override it).",
        )
    )
    layout.place(
        graph(
            uid,
            "Precision, recall, ROC AUC",
            [
                Query(
                    f'modeltap_performance_score{{{SCOPE},metric=~"precision|recall|roc_auc"}}',
                    "{{metric}} {{version}}",
                )
            ],
            unit="percentunit",
            limit=limits.f1_min,
            bad_below=True,
        )
    )
    layout.place(
        graph(
            uid,
            "Accuracy before labels: estimated and realized",
            [
                Query(
                    f'{ESTIMATED}{{{SCOPE},metric="accuracy"}}',
                    "{{version}} {{kind}}",
                ),
                Query(
                    f'{THRESHOLD}{{{SCOPE},metric="accuracy"}}',
                    "{{version}} threshold",
                ),
            ],
            unit="percentunit",
            dashed=["B"],
            description="CBPE's estimate from the scores (kind=estimated) as soon as a window "
            "closes, and the same metric once its labels arrive (kind=realized); the dashed "
            "line is the threshold, learned from the reference's chunks or configured in "
            "detectors.estimation.thresholds.",
        )
    )
    layout.place(
        graph(
            uid,
            "MAE and RMSE before labels: estimated and realized",
            [
                Query(f"{ESTIMATED_ERROR}{{{SCOPE}}}", "{{metric}} {{version}} {{kind}}"),
                Query(
                    f'{THRESHOLD}{{{SCOPE},metric=~"mae|rmse"}}',
                    "{{metric}} {{version}} threshold",
                ),
                Query(
                    f'{ESTIMATED}{{{SCOPE},metric="accuracy",kind="estimated"}}',
                    "estimated accuracy {{version}}",
                ),
            ],
            unit="none",
            dashed=["B"],
            description="DLE's estimate for regression models, and the realized error once "
            "labels arrive; a classifier shows its estimated accuracy here instead.",
        )
    )
    layout.place(
        graph(
            uid,
            "MAE and RMSE (regression)",
            [
                Query(
                    f'modeltap_performance_error{{{SCOPE},metric=~"mae|rmse"}}',
                    "{{metric}} {{version}}",
                ),
                Query(
                    f'modeltap_performance_score{{{SCOPE},metric="accuracy"}}',
                    "accuracy {{version}}",
                ),
            ],
            unit="none",
            limit=limits.rmse_max,
            description="Regression models; a classifier shows its accuracy here instead.",
        )
    )
    layout.place(
        graph(
            uid,
            "Label coverage",
            [Query(f"modeltap_label_coverage_ratio{{{SCOPE}}}", "{{version}}")],
            unit="percentunit",
            limit=limits.label_coverage_min,
            bad_below=True,
            description="Share of the window's predictions that have a label yet.",
        )
    )
    layout.place(
        graph(
            uid,
            "Label delay (median)",
            [Query(f"modeltap_label_delay_seconds{{{SCOPE}}}", "{{version}}")],
            unit="s",
        )
    )
    layout.place(
        graph(
            uid,
            "A/B: p-values against the baseline",
            [Query(f"modeltap_ab_pvalue{{{MODEL}}}", "{{version}} vs {{baseline}}: {{test}}")],
            unit="none",
            limit=config.detectors.ab_alpha,
            bad_below=True,
            description="Two-sided tests per challenger version; below the line (ab_alpha) the "
            "difference is significant.",
        )
    )
    layout.place(
        listing(
            uid,
            "A/B comparison now",
            [
                Query(f"modeltap_ab_pvalue{{{MODEL}}}"),
                Query(f"modeltap_ab_worse{{{MODEL}}}"),
            ],
        ),
        12,
    )
    layout.place(
        listing(
            uid,
            "Per version now",
            [
                Query(f'modeltap_performance_score{{{MODEL},metric="accuracy"}}'),
                Query(
                    f'sum by (version) (rate({REQUESTS}{{{MODEL},code!~"2.."}}[{RATE}])) '
                    f"/ sum by (version) (rate({REQUESTS}{{{MODEL}}}[{RATE}]))"
                ),
            ],
        ),
        12,
    )
    return dashboard(
        "modeltap-performance",
        "Model performance",
        "Quality against late labels, and versions compared.",
        ["performance"],
        layout=layout,
        datasource_uid=uid,
        variables_from="modeltap_results_window_end_timestamp_seconds",
    )
