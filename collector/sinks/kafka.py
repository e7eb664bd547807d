"""The Kafka sink: the sidecar publishes captured events; `monitor collect` stores them.

kafka-python's producer batches and compresses on its own thread; a write here hands the
batch over and waits (on the sink's thread, never the event loop) until the broker has
acknowledged all of it with acks=all. A write that fails or times out raises, and the
pipeline spools the batch; the producer is then dropped with whatever it still buffers, so
the spool is the one copy that will be retried.

kafka-python itself is imported with the first batch, on the sink's thread, like the store in
the database sinks: a sidecar is ready, and about 8 MiB smaller, before it has anything to
publish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from collector.kafka import client_settings, ensure_topics, parse_sink_url, to_message
from collector.sinks.protocol import Refused
from modeltap.config import KafkaConfig
from modeltap.errors import TransportError, TransportUnavailableError
from modeltap.events import CapturedEvent

if TYPE_CHECKING:
    from kafka import KafkaProducer

log = logging.getLogger("modeltap.kafka")


class KafkaSink:
    """Publishes events to ``kafka://host:port/topic`` as CloudEvents, keyed by model."""

    def __init__(self, url: str, config: KafkaConfig, *, timeout: float, source: str) -> None:
        servers, self.topic = parse_sink_url(url)
        self.name = url
        self._config = config
        self._settings = client_settings(config, servers)
        self._timeout = timeout
        self._source = source
        self._producer: KafkaProducer | None = None
        self._topic_ready = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modeltap-kafka")

    async def write(self, events: Sequence[CapturedEvent]) -> Sequence[Refused]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._write, list(events))

    def _connect(self) -> KafkaProducer:
        from kafka import KafkaProducer  # noqa: PLC0415 - see the module's docstring
        from kafka.errors import KafkaError  # noqa: PLC0415

        if self._producer is None:
            millis = int(self._timeout * 1000)
            try:
                self._producer = KafkaProducer(
                    **self._settings,
                    acks="all",
                    retries=5,
                    compression_type=None
                    if self._config.compression == "none"
                    else self._config.compression,
                    linger_ms=int(self._config.linger.total_seconds() * 1000),
                    batch_size=256 * 1024,
                    max_block_ms=millis,
                    request_timeout_ms=millis,
                    delivery_timeout_ms=max(millis + 1000, 2000),
                )
            except KafkaError as error:
                raise TransportUnavailableError(
                    f"cannot reach Kafka at {', '.join(self._settings['bootstrap_servers'])}: "
                    f"{error}"
                ) from error
        if not self._topic_ready:
            # The producer retries while leaders are elected; the sink must not wait for them.
            ensure_topics(self._settings, self._config, [self.topic], wait=0)
            self._topic_ready = True
        return self._producer

    def _write(self, events: list[CapturedEvent]) -> list[Refused]:
        producer = self._connect()
        from kafka.errors import (  # noqa: PLC0415 - loaded by _connect already
            InvalidRecordError,
            KafkaError,
            MessageSizeTooLargeError,
        )

        # Errors about one record, which sending it again cannot fix.
        refusing = (MessageSizeTooLargeError, InvalidRecordError)
        refused: list[Refused] = []
        try:
            futures: list[tuple[CapturedEvent, Any]] = []
            for event in events:
                key, value, headers = to_message(event, self._source)
                try:
                    sent = producer.send(self.topic, key=key, value=value, headers=headers)
                except refusing as error:  # larger than the producer may send
                    refused.append(Refused(event, f"Kafka refused the event: {error}"))
                    continue
                futures.append((event, sent))
            producer.flush(timeout=self._timeout)
            for event, future in futures:
                try:
                    future.get(timeout=0)  # raises the delivery error, if any
                except refusing as error:  # the broker's limits, not its health
                    refused.append(Refused(event, f"Kafka refused the event: {error}"))
        except KafkaError as error:
            self._drop_producer()
            raise TransportError(
                f"publishing to Kafka topic {self.topic} failed: {error}"
            ) from error
        return refused

    def _drop_producer(self) -> None:
        from kafka.errors import KafkaError  # noqa: PLC0415 - loaded by _connect already

        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)  # discard what it buffers: the spool has it
            except KafkaError:
                log.debug("closing a failed producer", exc_info=True)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)

    def _close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=self._timeout)
            self._producer = None
