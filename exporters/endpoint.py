"""Putting the exporter on a registry, and serving a registry on its own port."""

from __future__ import annotations

from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

from exporters.scrape import ResultsExporter
from exporters.source import Clock, ExportPlan, ResultSource
from modeltap.config import MonitorConfig
from modeltap.errors import ListenError


def register_exporter(
    registry: CollectorRegistry, source: ResultSource, config: MonitorConfig, clock: Clock
) -> ResultsExporter:
    """Add the results collector and this process's CPU and memory to ``registry``.

    >>> from datetime import UTC, datetime
    >>> from modeltap.store import SqlStore
    >>> registry = CollectorRegistry()
    >>> _ = register_exporter(registry, SqlStore.open("sqlite:///:memory:", migrate=True),
    ...                       MonitorConfig(), lambda: datetime(2026, 1, 1, tzinfo=UTC))
    >>> registry.get_sample_value("modeltap_exporter_store_up")
    1.0
    """
    collector = ResultsExporter(source, ExportPlan.from_config(config), clock)
    registry.register(collector)
    # process_* series: the dashboards' CPU and memory outside Kubernetes (Linux only).
    ProcessCollector(registry=registry)
    return collector


def serve_registry(
    address: str, registry: CollectorRegistry, setting: str = "exporter.listen"
) -> tuple[WSGIServer, Thread]:
    """Serve ``registry`` at http://ADDRESS/metrics from a daemon thread.

    >>> server, thread = serve_registry("127.0.0.1:0", CollectorRegistry())
    >>> server.shutdown()
    """
    host, _, port = address.rpartition(":")
    # An empty host (":9110") means every interface, as in the other *listen settings.
    every = "0.0.0.0"  # noqa: S104
    try:
        return start_http_server(int(port), addr=host.strip("[]") or every, registry=registry)
    except OSError as error:
        raise ListenError.binding(address, setting, error) from None
