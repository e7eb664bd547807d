"""*Data drift & quality*: drift per feature, drifted features, dataset and prediction drift."""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard

from exporters.dashboards.panels import (
    SCOPE,
    Layout,
    Query,
    dashboard,
    flags,
    graph,
    listing,
    variables,
)
from monitor.config import MonitorConfig


def build(config: MonitorConfig) -> Dashboard:
    """The dashboard (a grafana-foundation-sdk model)."""
    uid = config.exporter.datasource_uid
    drift = config.detectors.drift
    limits = config.detectors.thresholds
    psi = drift.method_thresholds.get("psi", 0.2)
    pvalue = drift.method_thresholds.get("ks", 0.05)
    layout = Layout()
    layout.place(
        graph(
            uid,
            "PSI per feature",
            [
                Query(
                    f'modeltap_feature_drift_score{{{SCOPE},test="psi"}}', "{{feature}} {{version}}"
                )
            ],
            unit="none",
            limit=psi,
            description="Population stability index of each feature "
            "against the reference, per window; the line is detectors.drift.method_thresholds.psi.",
        ),
        24,
    )
    layout.place(
        flags(
            uid,
            "Drifted features",
            Query(f"modeltap_feature_drifted{{{SCOPE}}}", "{{feature}} {{version}}"),
            "Each feature's deciding test (detectors.drift.numerical_method / categorical_method).",
        ),
        24,
        6,
    )
    layout.place(
        graph(
            uid,
            "p-values per feature (KS, chi-square)",
            [
                Query(
                    f'modeltap_feature_drift_score{{{SCOPE},test=~"ks|chisquare|z"}}',
                    "{{feature}} {{test}} {{version}}",
                )
            ],
            unit="none",
            limit=pvalue,
            bad_below=True,
            description="Below the line the test rejects 'same distribution'; large windows "
            "reject tiny differences, hence PSI decides by default.",
        )
    )
    layout.place(
        graph(
            uid,
            "Dataset drift share",
            [Query(f"modeltap_dataset_drift_share_ratio{{{SCOPE}}}", "{{version}}")],
            unit="percentunit",
            limit=drift.dataset_drift_share,
            description="Share of judged features that drifted.",
        )
    )
    layout.place(
        graph(
            uid,
            "Prediction drift",
            [
                Query(
                    f"modeltap_prediction_drift_score{{{SCOPE}}}", "{{output}} {{test}} {{version}}"
                )
            ],
            unit="none",
            limit=psi,
            description="Drift of the model's output by its deciding test.",
        )
    )
    layout.place(
        listing(
            uid,
            "Drift now",
            [
                Query(f'modeltap_feature_drift_score{{{SCOPE},test="psi"}}'),
                Query(f"modeltap_feature_drifted{{{SCOPE}}}"),
            ],
        )
    )
    layout.place(
        graph(
            uid,
            "Missing values",
            [Query(f"modeltap_feature_missing_ratio{{{SCOPE}}}", "{{feature}} {{version}}")],
            unit="percentunit",
            limit=limits.missing_ratio_max,
        )
    )
    layout.place(
        graph(
            uid,
            "Values of the wrong type",
            [Query(f"modeltap_feature_type_violation_ratio{{{SCOPE}}}", "{{feature}} {{version}}")],
            unit="percentunit",
            limit=limits.type_violation_max,
        )
    )
    layout.place(
        graph(
            uid,
            "Out of the reference's range (numerical)",
            [Query(f"modeltap_feature_out_of_range_ratio{{{SCOPE}}}", "{{feature}} {{version}}")],
            unit="percentunit",
            limit=limits.out_of_range_max,
        )
    )
    layout.place(
        graph(
            uid,
            "Categories the reference never saw",
            [
                Query(
                    f"modeltap_feature_unseen_category_ratio{{{SCOPE}}}", "{{feature}} {{version}}"
                )
            ],
            unit="percentunit",
            limit=limits.unseen_category_max,
        )
    )
    board = dashboard(
        "modeltap-drift",
        "Data drift & quality",
        "Drift against the reference profile and data quality, per feature.",
        ["drift"],
    )
    for variable in variables(uid, "modeltap_results_window_end_timestamp_seconds"):
        board.with_variable(variable)
    for panel in layout.placed:
        board.with_panel(panel)
    return board.build()
