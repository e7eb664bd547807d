"""The sidecar's own metrics, computed where they happen and read at scrape time.

Series stay bounded: models and versions come from requests (KServe paths name them), so
after ``max_models`` distinct pairs further ones are counted under ``model="other"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from collector.capture import Exchange

# Model latency spans a millisecond (a cached linear model) to tens of seconds (an LLM).
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
OTHER = "other"
DROP_REASONS = (
    "queue_full",
    "spool_full",
    "spool_unwritable",
    "quarantine_full",
    "unreadable_line",
)
QUARANTINE_REASONS = ("sink_refused", "undecodable")
# Errors of the upstream call counted in modeltap_sidecar_upstream_errors_total.
UPSTREAM_ERRORS = frozenset(("upstream_unreachable", "upstream_timeout", "upstream_broken"))


class SidecarMetrics:
    """Request, latency and capture metrics of one sidecar, in the given registry."""

    def __init__(self, registry: CollectorRegistry, *, max_models: int = 20) -> None:
        self._max_models = max_models
        self._seen: set[tuple[str, str]] = set()
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        pair = ["model", "version"]
        self.requests = Counter(
            "modeltap_sidecar_requests",
            "Requests answered through the sidecar, by status code.",
            [*pair, "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "modeltap_sidecar_request_duration_seconds",
            "Time from receiving a request to sending the last byte of its response.",
            pair,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "modeltap_sidecar_upstream_duration_seconds",
            "Time the model server took, from sending it the request to its last byte.",
            pair,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "modeltap_sidecar_upstream_errors",
            "Requests the model server did not answer whole: 502 unreachable or cut off "
            "mid-answer, 504 timed out.",
            [*pair, "code"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "modeltap_sidecar_in_flight_requests",
            "Requests being proxied right now.",
            registry=registry,
        )
        self.sent = Counter(
            "modeltap_capture_sent_events", "Captured events the sink accepted.", registry=registry
        )
        self.spooled = Counter(
            "modeltap_capture_spooled_events",
            "Captured events written to the disk spool.",
            registry=registry,
        )
        self.replayed = Counter(
            "modeltap_capture_replayed_events",
            "Spooled events later delivered to the sink.",
            registry=registry,
        )
        self.dropped = Counter(
            "modeltap_capture_dropped_events",
            "Captured events lost, by reason: queue_full (memory queue), spool_full (the "
            "spool's bound), spool_unwritable (the disk refused, e.g. full), quarantine_full, "
            "unreadable_line (log-tail lines that are not a JSON object).",
            ["reason"],
            registry=registry,
        )
        self.quarantined = Counter(
            "modeltap_capture_quarantined_events",
            "Captured events the sink refused for good (sink_refused) or spooled batches "
            "that could not be read back (undecodable), set aside in the spool's "
            "quarantine/ folder instead of blocking the events behind them.",
            ["reason"],
            registry=registry,
        )
        for reason in DROP_REASONS:
            self.dropped.labels(reason)
        for reason in QUARANTINE_REASONS:
            self.quarantined.labels(reason)
        self.unparsed = Counter(
            "modeltap_capture_unparsed_events",
            "Requests whose bodies could not be turned into prediction rows.",
            registry=registry,
        )
        self.sink_errors = Counter(
            "modeltap_capture_sink_errors",
            "Failed or timed-out writes to the sink.",
            registry=registry,
        )
        self._gauges = {
            name: Gauge(name, text, registry=registry)
            for name, text in (
                ("modeltap_capture_queue_events", "Captured events waiting in memory."),
                ("modeltap_capture_queue_capacity_events", "Events the memory queue can hold."),
                ("modeltap_capture_spool_bytes", "Bytes of captured events on the disk spool."),
                ("modeltap_capture_spool_capacity_bytes", "Bytes the disk spool may hold."),
                ("modeltap_capture_sink_up", "1 when the last write to the sink succeeded."),
            )
        }

    def watch(self, name: str, read: Callable[[], float]) -> None:
        """Compute gauge ``name`` at scrape time from ``read``."""
        self._gauges[name].set_function(read)

    def observe(self, exchange: Exchange) -> None:
        """Count one answered request (label lookups cached: this runs per request)."""
        key = (exchange.model, exchange.version, exchange.status)
        children = self._children.get(key)
        if children is None:
            model, version = self.labels(exchange.model, exchange.version)
            children = (
                self.requests.labels(model, version, str(exchange.status)),
                self.duration.labels(model, version),
                self.upstream_duration.labels(model, version),
            )
            if len(self._children) < 10_000:
                self._children[key] = children
        requests, duration, upstream_duration = children
        requests.inc()
        if exchange.latency_ms is not None:
            duration.observe(exchange.latency_ms / 1000)
        if exchange.upstream_latency_ms is not None:
            upstream_duration.observe(exchange.upstream_latency_ms / 1000)
        if exchange.error in UPSTREAM_ERRORS:
            # Created only when it happens: no upstream_errors{code="200"} series.
            model, version = self.labels(exchange.model, exchange.version)
            # A stream cut off after a 2xx head is a bad gateway all the same.
            code = str(exchange.status) if exchange.status >= 500 else "502"
            self.upstream_errors.labels(model, version, code).inc()

    def labels(self, model: str, version: str) -> tuple[str, str]:
        """The (model, version) to label series with, folding excess pairs into "other"."""
        pair = (model, version)
        if pair in self._seen:
            return pair
        if len(self._seen) < self._max_models:
            self._seen.add(pair)
            return pair
        return OTHER, OTHER
