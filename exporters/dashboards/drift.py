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
)
from modeltap.config import MonitorConfig


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
        graph(
            uid,
            "Multivariate drift",
            [
                Query(f"modeltap_multivariate_drift_score{{{SCOPE}}}", "{{method}} {{version}}"),
                Query(
                    f"modeltap_multivariate_drift_threshold{{{SCOPE}}}",
                    "{{method}} {{version}} threshold",
                ),
            ],
            unit="none",
            dashed=["B"],
            description="The numerical features together: PCA reconstruction error "
            "(reconstruction_error) and a domain classifier's ROC AUC (domain_classifier), "
            "higher drifts; the dashed lines are their thresholds (the reference band, or "
            "detectors.multivariate's).",
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
    quality = (
        ("Missing values", "missing_ratio", limits.missing_ratio_max),
        ("Values of the wrong type", "type_violation_ratio", limits.type_violation_max),
        ("Out of the reference's range (numerical)", "out_of_range_ratio", limits.out_of_range_max),
        ("Categories the reference never saw", "unseen_category_ratio", limits.unseen_category_max),
    )
    for title, metric, limit in quality:
        query = Query(f"modeltap_feature_{metric}{{{SCOPE}}}", "{{feature}} {{version}}")
        layout.place(graph(uid, title, [query], unit="percentunit", limit=limit))
    return dashboard(
        "modeltap-drift",
        "Data drift & quality",
        "Drift against the reference profile and data quality, per feature.",
        ["drift"],
        layout=layout,
        datasource_uid=uid,
        variables_from="modeltap_results_window_end_timestamp_seconds",
    )
