"""*modeltap health*: capture, queue and spool, Kafka lag, collector, detectors, targets."""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard

from exporters.dashboards.panels import (
    MODEL,
    RATE,
    Layout,
    Query,
    dashboard,
    graph,
)
from modeltap.config import MonitorConfig

OUTCOMES = ("sent", "spooled", "replayed", "dropped", "unparsed")


def build(config: MonitorConfig) -> Dashboard:
    """The dashboard (a grafana-foundation-sdk model)."""
    uid = config.exporter.datasource_uid
    stale = 3 * config.detectors.interval.total_seconds()
    layout = Layout()
    layout.place(
        graph(
            uid,
            "Capture outcomes",
            [
                Query(f"sum(rate(modeltap_capture_{name}_events_total[{RATE}]))", name)
                for name in OUTCOMES
            ],
            unit="ops",
            description="Events per second, all sidecars.",
        ),
        12,
    )
    layout.place(
        graph(
            uid,
            "Sink up",
            [Query("modeltap_capture_sink_up", "{{instance}}")],
            unit="bool",
            limit=1.0,
            bad_below=True,
        ),
        12,
    )
    layout.place(
        graph(
            uid,
            "Memory queue",
            [
                Query("modeltap_capture_queue_events", "queued {{instance}}"),
                Query("modeltap_capture_queue_capacity_events", "capacity {{instance}}"),
            ],
            unit="short",
        )
    )
    layout.place(
        graph(
            uid,
            "Disk spool",
            [
                Query("modeltap_capture_spool_bytes", "spooled {{instance}}"),
                Query("modeltap_capture_spool_capacity_bytes", "capacity {{instance}}"),
            ],
            unit="bytes",
        )
    )
    layout.place(
        graph(
            uid,
            "Kafka lag (collector)",
            [Query("sum by (instance) (modeltap_collector_lag_messages)", "{{instance}}")],
            unit="short",
        )
    )
    layout.place(
        graph(
            uid,
            "Collector throughput",
            [
                Query(f"sum(rate(modeltap_collector_consumed_messages_total[{RATE}]))", "consumed"),
                Query(f"sum(rate(modeltap_collector_written_events_total[{RATE}]))", "written"),
                Query(
                    f"sum(rate(modeltap_collector_duplicate_events_total[{RATE}]))", "duplicates"
                ),
                Query(
                    f"sum(rate(modeltap_collector_dead_lettered_messages_total[{RATE}]))",
                    "dead-lettered",
                ),
            ],
            unit="ops",
        )
    )
    layout.place(
        graph(
            uid,
            "Collector batch time (p99)",
            [
                Query(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(modeltap_collector_batch_duration_seconds_bucket[{RATE}])))",
                    "p99",
                )
            ],
            unit="s",
        )
    )
    layout.place(
        graph(
            uid,
            "Detector runs and failures (within the lookback)",
            [
                Query(f"modeltap_detector_recent_runs{{{MODEL}}}", "runs {{detector}}"),
                Query(f"modeltap_detector_recent_failures{{{MODEL}}}", "failures {{detector}}"),
            ],
            unit="short",
        )
    )
    layout.place(
        graph(
            uid,
            "Detector staleness",
            [Query(f"modeltap_detector_staleness_seconds{{{MODEL}}}", "{{detector}}")],
            unit="s",
            limit=stale,
            description="Since each job's newest successful run; the line is three "
            "detectors.interval (ModeltapDetectorStale).",
        )
    )
    layout.place(
        graph(
            uid,
            "Detector run time",
            [Query(f"modeltap_detector_last_run_duration_seconds{{{MODEL}}}", "{{detector}}")],
            unit="s",
        )
    )
    layout.place(
        graph(
            uid,
            "Failures in a row",
            [Query(f"modeltap_detector_consecutive_failures{{{MODEL}}}", "{{detector}}")],
            unit="short",
            limit=0.5,
        )
    )
    pattern = config.exporter.job_pattern
    layout.place(
        graph(
            uid,
            "Targets up",
            [Query(f'up{{job=~"{pattern}"}}', "{{job}} {{instance}}")],
            unit="bool",
            limit=1.0,
            bad_below=True,
        )
    )
    layout.place(
        graph(
            uid,
            "Exporter: store reads per scrape",
            [Query("modeltap_exporter_read_duration_seconds", "{{instance}}")],
            unit="s",
        ),
        24,
    )
    return dashboard(
        "modeltap-health",
        "modeltap health",
        "The monitoring pipeline itself: capture, transport, detectors.",
        ["health"],
        layout=layout,
        datasource_uid=uid,
        variables_from="modeltap_detector_recent_runs",
    )
