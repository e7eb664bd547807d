"""Where captured events go: one small interface (``protocol``), chosen by URL.

``sqlite:///…`` and ``postgresql+psycopg://…`` write through the store (``sql``);
``kafka://host:port/topic`` publishes to Kafka for `monitor collect` to store (``kafka``).

Each sink's module is imported when that sink is opened: a sidecar publishing to Kafka
never loads SQLAlchemy and the store, one writing to a database never loads kafka-python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from collector.sinks.protocol import Refused, Sink
from modeltap.config import KafkaConfig
from modeltap.errors import ConfigError

if TYPE_CHECKING:
    from collector.sinks.sql import SqlSink

__all__ = ["Refused", "Sink", "SqlSink", "open_sink"]


def __getattr__(name: str) -> Any:
    # `from collector.sinks import SqlSink` keeps working, loading the store only then.
    if name == "SqlSink":
        from collector.sinks.sql import SqlSink  # noqa: PLC0415 - see the module's docstring

        return SqlSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_sink(url: str, kafka: KafkaConfig, *, timeout: float, source: str) -> Sink:
    """The sink for ``url``; the embedded SQLite default creates its own schema."""
    if url.startswith(("sqlite:", "postgresql")):
        from collector.sinks.sql import SqlSink  # noqa: PLC0415 - see the module's docstring

        return SqlSink(url)
    if url.startswith("kafka://"):
        from collector.sinks.kafka import KafkaSink  # noqa: PLC0415 - only Kafka users need it

        # Leave the pipeline a margin to spool before its own timeout gives up on the write.
        return KafkaSink(url, kafka, timeout=timeout * 0.8, source=source)
    from modeltap.store import redact  # noqa: PLC0415 - only this error needs SQLAlchemy

    raise ConfigError(
        f"sink {redact(url)} is not supported; use sqlite:///path.db, "
        "postgresql+psycopg://… or kafka://host:port/topic"
    )
