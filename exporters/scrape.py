"""The scrape-time Prometheus collector over stored detector results and run records.

Nothing is kept in memory between scrapes: every scrape reads the newest stored values, so
every replica of ``monitor serve`` or ``monitor detect`` answers the same, and a restart
loses nothing. Reads cover ``exporter.lookback`` only, so a scrape costs the same after a
day or a year; features past ``exporter.max_features_per_model`` are left out, and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from exporters.health import JobHealth, job_health
from exporters.metrics import RESULT_FAMILIES, WINDOW_END, Family, samples
from exporters.source import Clock, ExportPlan, ResultSource
from modeltap.errors import StorageError
from modeltap.schema import LatestValue

log = logging.getLogger("modeltap.exporter")

JOB = ("model", "detector")
HEALTH_FAMILIES = (
    Family("modeltap_detector_last_run_timestamp_seconds", "Start of the job's newest run.", JOB),
    Family(
        "modeltap_detector_last_success_timestamp_seconds",
        "The moment the job's newest successful run computed for.",
        JOB,
    ),
    Family("modeltap_detector_last_run_duration_seconds", "How long the newest run took.", JOB),
    Family("modeltap_detector_recent_runs", "Runs of the job within exporter.lookback.", JOB),
    Family(
        "modeltap_detector_recent_failures", "Failed runs of the job within exporter.lookback.", JOB
    ),
    Family(
        "modeltap_detector_consecutive_failures",
        "Failed runs since the newest successful one.",
        JOB,
    ),
    Family(
        "modeltap_detector_staleness_seconds",
        "Seconds since the job's newest successful run (at most exporter.lookback is read).",
        JOB,
    ),
)
CAPPED = Family(
    "modeltap_exporter_capped_features",
    "Features left out of the per-feature series (exporter.max_features_per_model).",
    ("model",),
)
STORE_UP = Family("modeltap_exporter_store_up", "1 when this scrape could read the store.", ())
READ_SECONDS = Family(
    "modeltap_exporter_read_duration_seconds", "Time this scrape spent reading the store.", ()
)


class ResultsExporter(Collector):
    """Yields gauges for the newest results and the detectors' run health on every scrape.

    >>> from prometheus_client import CollectorRegistry
    >>> from datetime import UTC, datetime, timedelta
    >>> from modeltap.store import SqlStore
    >>> store = SqlStore.open("sqlite:///:memory:", migrate=True)
    >>> registry = CollectorRegistry()
    >>> registry.register(ResultsExporter(store, ExportPlan(timedelta(hours=2)),
    ...                                    lambda: datetime(2026, 1, 1, tzinfo=UTC)))
    >>> registry.get_sample_value("modeltap_exporter_store_up")
    1.0
    """

    def __init__(self, source: ResultSource, plan: ExportPlan, clock: Clock) -> None:
        self._source = source
        self._plan = plan
        self._clock = clock

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Names only: registering must not read the store.
        return [_gauge(family) for family in self._all()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._clock()
        since = now - self._plan.lookback
        started = time.perf_counter()
        try:
            results = self._source.latest_values(since)
            health = job_health(self._source.runs_since(since), self._plan.jobs)
        except StorageError as error:
            log.warning("scrape could not read the store: %s", error)
            yield _single(STORE_UP, 0.0)
            return
        gauges = {family.name: _gauge(family) for family in RESULT_FAMILIES}
        kept, capped = self._capped(results)
        ends: dict[tuple[str, str], float] = {}
        for result in kept:
            for family, labels, value in samples(result):
                gauges[family.name].add_metric(list(labels), value)
            key = (result.model, result.version)
            ends[key] = max(ends.get(key, 0.0), result.window_end.timestamp())
        for key, end in sorted(ends.items()):
            gauges[WINDOW_END.name].add_metric(list(key), end)
        yield from gauges.values()
        yield from _health(health, now, since)
        capped_gauge = _gauge(CAPPED)
        for model, count in sorted(capped.items()):
            capped_gauge.add_metric([model], float(count))
        yield capped_gauge
        yield _single(STORE_UP, 1.0)
        yield _single(READ_SECONDS, time.perf_counter() - started)

    def _capped(self, results: list[LatestValue]) -> tuple[list[LatestValue], dict[str, int]]:
        """Results of each model's first ``max_features`` features (configured order first)."""
        features: dict[str, set[str]] = {}
        for result in results:
            if result.feature and result.detector != "prediction_drift":
                features.setdefault(result.model, set()).add(result.feature)
        allowed: dict[str, set[str]] = {}
        capped: dict[str, int] = {}
        for model, names in features.items():
            configured = [name for name in self._plan.feature_order.get(model, ()) if name in names]
            ordered = configured + sorted(names - set(configured))
            allowed[model] = set(ordered[: self._plan.max_features])
            capped[model] = max(0, len(ordered) - self._plan.max_features)
        kept = [
            result
            for result in results
            if not result.feature
            or result.detector == "prediction_drift"
            or result.feature in allowed[result.model]
        ]
        return kept, capped

    def _all(self) -> list[Family]:
        return [*RESULT_FAMILIES, *HEALTH_FAMILIES, CAPPED, STORE_UP, READ_SECONDS]


def _gauge(family: Family) -> GaugeMetricFamily:
    return GaugeMetricFamily(family.name, family.help, labels=list(family.labels))


def _single(family: Family, value: float) -> GaugeMetricFamily:
    gauge = _gauge(family)
    gauge.add_metric([], value)
    return gauge


def _health(jobs: list[JobHealth], now: datetime, since: datetime) -> Iterator[GaugeMetricFamily]:
    gauges = [_gauge(family) for family in HEALTH_FAMILIES]
    last_run, last_ok, duration, runs, failures, in_a_row, stale = gauges
    for job in jobs:
        labels = [job.model, job.detector]
        if job.last_started_at is not None:
            last_run.add_metric(labels, job.last_started_at.timestamp())
        if job.last_success_as_of is not None:
            last_ok.add_metric(labels, job.last_success_as_of.timestamp())
        if job.last_duration_ms is not None:
            duration.add_metric(labels, job.last_duration_ms / 1000)
        runs.add_metric(labels, float(job.runs))
        failures.add_metric(labels, float(job.failures))
        in_a_row.add_metric(labels, float(job.consecutive_failures))
        stale.add_metric(labels, job.staleness_seconds(now, since))
    yield from gauges
