"""``monitor collect``: the Kafka consumer group that stores events and labels."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import click

from modeltap.errors import ListenError, TransportUnavailableError
from modeltap.logs import setup_logging
from monitor.commands import Settings, pass_settings


@click.command()
@click.option("--metrics-listen", help="Address of /metrics [collect.metrics_listen].")
@pass_settings
def collect(settings: Settings, /, metrics_listen: str | None) -> None:
    """Consume captured events and labels from Kafka and store them (exactly once).

    Run as many as there are partitions to share: they form one consumer group
    (kafka.consumer_group). Offsets are committed only after the database commit, so a
    crash re-reads at most one batch, which the store ignores. SIGTERM finishes the
    batch in hand and leaves the group.

    \b
    Example:
      MONITOR_STORAGE__URL=postgresql+psycopg://modeltap@db/modeltap \\
      MONITOR_KAFKA__BOOTSTRAP_SERVERS=kafka:9092 monitor collect
    """
    from kafka.errors import KafkaError  # noqa: PLC0415 - keep `monitor --help` fast
    from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415

    from collector.consumer import Consumer, ConsumerMetrics  # noqa: PLC0415
    from collector.sidecar import split_address  # noqa: PLC0415
    from modeltap.store import open_store  # noqa: PLC0415

    overrides = {"collect": {"metrics_listen": metrics_listen}} if metrics_listen else None
    config = settings.config(overrides)
    setup_logging()
    store = open_store(config.storage.url, pool_size=2)
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry)
    host, port = split_address(config.collect.metrics_listen)
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        store.close()
        raise ListenError.binding(
            config.collect.metrics_listen, "collect.metrics_listen", error
        ) from None

    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    collector = None
    deadline = time.monotonic() + 60
    while collector is None and not stop.is_set():
        try:
            collector = Consumer(config, store, metrics)
        except KafkaError as error:
            if time.monotonic() > deadline:
                raise TransportUnavailableError(
                    f"cannot reach Kafka at {', '.join(config.kafka.bootstrap_servers)} "
                    f"after 60 s ({error}); is kafka.bootstrap_servers right?"
                ) from error
            logging.getLogger("modeltap.collect").warning("Kafka not reachable yet: %s", error)
            stop.wait(2)
    if collector is not None:
        collector.run(stop)
    store.close()
