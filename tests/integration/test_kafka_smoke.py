"""The real Kafka broker from scripts/services.sh: produce and consume with kafka-python."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

# real_clock: the broker (and Prometheus) keep their own clock, so the shifted-clock pass
# of `make test` leaves these out (see the marker in pyproject.toml).
pytestmark = [pytest.mark.integration, pytest.mark.real_clock]


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="modeltap-tests")
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    yield name
    admin.delete_topics([name])
    admin.close()


def test_messages_round_trip_with_keys_and_headers_in_order(
    kafka_bootstrap: str, topic: str
) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    sent = [(f"model-{n % 3}".encode(), f"event-{n}".encode()) for n in range(300)]
    for key, value in sent:
        producer.send(topic, key=key, value=value, headers=[("ce_type", b"smoke")])
    producer.flush(timeout=30)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15_000,
    )
    received = []
    for message in consumer:
        received.append(message)
        if len(received) == len(sent):
            break
    consumer.close()

    assert len(received) == len(sent)
    assert all(message.headers == [("ce_type", b"smoke")] for message in received)
    # One key always lands on one partition, in the order it was sent.
    for key in {key for key, _ in sent}:
        expected = [value for k, value in sent if k == key]
        got = [m.value for m in received if m.key == key]
        assert got == expected
        assert len({m.partition for m in received if m.key == key}) == 1
