"""Where captured events go: one small interface (``protocol``), chosen by URL.

``sqlite:///…`` and ``postgresql+psycopg://…`` write through the store (``sql``);
``kafka://host:port/topic`` publishes to Kafka for `monitor collect` to store (``kafka``).
"""

from __future__ import annotations

from collector.sinks.protocol import Refused, Sink
from collector.sinks.sql import SqlSink
from modeltap.config import KafkaConfig
from modeltap.errors import ConfigError
from modeltap.store import redact

__all__ = ["Refused", "Sink", "SqlSink", "open_sink"]


def open_sink(url: str, kafka: KafkaConfig, *, timeout: float, source: str) -> Sink:
    """The sink for ``url``; the embedded SQLite default creates its own schema."""
    if url.startswith(("sqlite:", "postgresql")):
        return SqlSink(url)
    if url.startswith("kafka://"):
        from collector.sinks.kafka import KafkaSink  # noqa: PLC0415 - only Kafka users need it

        # Leave the pipeline a margin to spool before its own timeout gives up on the write.
        return KafkaSink(url, kafka, timeout=timeout * 0.8, source=source)
    raise ConfigError(
        f"sink {redact(url)} is not supported; use sqlite:///path.db, "
        "postgresql+psycopg://… or kafka://host:port/topic"
    )
