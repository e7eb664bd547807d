"""The demo's last step: fit a reference from its first hours, run every detector once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from rich.console import Console

from detectors import fitting
from detectors.runner import Runner
from detectors.settings import ModelSettings
from exporters.endpoint import register_exporter
from modeltap.config import MonitorConfig
from modeltap.store import SqlStore
from monitor.demo.lead import Lead, estimate_lead
from monitor.render import print_outcomes


def demo_config(hours: int) -> MonitorConfig:
    """The demo's churn model, with 1-hour windows over everything it generated."""
    return MonitorConfig.model_validate(
        {
            "models": [
                {
                    "name": "churn",
                    "task": "classification",
                    "positive_class": 1,
                    "segment_by": "plan",
                    "features": [
                        {"name": "age", "type": "numerical"},
                        {"name": "tenure_months", "type": "numerical"},
                        {"name": "plan", "type": "categorical"},
                    ],
                    # The history's accuracy is ~69% until the drift, ~35% after it.
                    "thresholds": {"accuracy_min": 0.6},
                }
            ],
            # The labels arrive 4-12 h late: windows stay open for them that long.
            "detectors": {
                "window": "1h",
                "label_horizon": f"{hours + 13}h",
                # Two uncorrelated numerical features: half of the variance keeps one
                # principal component, so the reconstruction error can move.
                "multivariate": {"variance": 0.5},
            },
        }
    )


def run_detectors(
    store: SqlStore, start: datetime, end: datetime, hours: int, console: Console
) -> Lead | None:
    """Reference = every hour but the drifted last one; then `monitor detect --once` at ``end``.

    Returns how far the estimated accuracy led the labels (None: it never alerted)."""
    if hours < 2:
        console.print("(detectors skipped: the reference needs an hour before the drift)")
        return None
    settings = ModelSettings.from_config(demo_config(hours), "churn")
    until = end - timedelta(hours=1)
    rows = fitting.rows_from_store(store, settings, start, until, None)
    fitting.save(
        store, settings, fitting.fit_rows(settings, rows), version="", source="demo", now=end
    )
    console.print(
        f"\nfitted a reference profile from {start:%H:%M}-{until:%H:%M} ({len(rows)} rows) "
        "and ran every detector once, as `monitor detect --once` would:"
    )
    outcomes = Runner(store, [settings], owner="demo").run_all(end)
    print_outcomes(outcomes, console)
    show_exported(store, demo_config(hours), console)
    lead = estimate_lead(store, settings, start, end)
    console.print(
        "\n[bold]before the labels[/]: "
        + (lead.describe() if lead else "the estimated accuracy did not alert"),
        soft_wrap=True,
        highlight=False,
    )
    return lead


# The families worth a glance after the drift plant; the rest are on /metrics.
HIGHLIGHTS = (
    "modeltap_feature_drifted{",
    "modeltap_dataset_drift_share_ratio{",
    'modeltap_performance_score{metric="accuracy"',
    'modeltap_performance_estimated_score{kind="estimated",metric="accuracy"',
    "modeltap_multivariate_drift_score{",
)


def show_exported(store: SqlStore, config: MonitorConfig, console: Console) -> None:
    """What Prometheus would scrape from `monitor serve` over this store, in excerpt."""
    registry = CollectorRegistry()
    register_exporter(registry, store, config, lambda: datetime.now(UTC))
    lines = generate_latest(registry).decode().splitlines()
    series = [line for line in lines if line.startswith("modeltap_")]
    console.print(
        f"\nthe exporter turns these results into {len(series)} modeltap_* series "
        "(`monitor serve` and `monitor detect` serve them at /metrics), among them:"
    )
    for line in series:
        if line.startswith(HIGHLIGHTS):
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        "alert rules from the same thresholds: `monitor rules generate`; Grafana dashboards: "
        "`monitor dashboards export DIR`"
    )
