"""Kafka plumbing shared by the sink and the collector: client settings, topics, the wire.

Events travel as CloudEvents 1.0 in binary mode: attributes in ``ce_*`` headers, the JSON
body as the value, the model name as the key (so one model's events stay in order on one
partition). Two types are ours: ``dev.modeltap.inference.v1`` (a request and its prediction
rows, ``modeltap.events``) and ``dev.modeltap.label.v1`` (late ground truth).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from cloudevents.core.bindings import kafka as binding
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from modeltap.codec import dumps
from modeltap.config import KafkaConfig
from modeltap.errors import ConfigError
from modeltap.events import CapturedEvent, EventFormatError, decode_event, encode_event

if TYPE_CHECKING:
    from kafka.admin import KafkaAdminClient

log = logging.getLogger("modeltap.kafka")

INFERENCE_TYPE = "dev.modeltap.inference.v1"
LABEL_TYPE = "dev.modeltap.label.v1"
_FORMAT = JSONFormat()


def client_settings(config: KafkaConfig, bootstrap: Sequence[str] | None = None) -> dict[str, Any]:
    """kafka-python keyword arguments for the configured brokers and security.

    Secrets come from the config (itself from the environment or a mounted file) and are
    handed to the client only; nothing here logs them.
    """
    security = config.security
    settings: dict[str, Any] = {
        "bootstrap_servers": list(bootstrap or config.bootstrap_servers),
        "client_id": config.client_id,
        "security_protocol": security.protocol,
        # kafka-python backs off up to 30 s between reconnects by default, which would
        # leave a returned broker unused for that long; a second is plenty on a LAN.
        "reconnect_backoff_max_ms": 1000,
    }
    if security.protocol in ("SSL", "SASL_SSL"):
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(security, key)
            if value is not None:
                settings[key] = str(value)
        if security.ssl_password is not None:
            settings["ssl_password"] = security.ssl_password.get_secret_value()
    if security.protocol.startswith("SASL"):
        settings["sasl_mechanism"] = security.sasl_mechanism
        settings["sasl_plain_username"] = security.sasl_username
        settings["sasl_plain_password"] = sasl_password(config)
    return settings


def sasl_password(config: KafkaConfig) -> str | None:
    security = config.security
    if security.sasl_password is not None:
        return security.sasl_password.get_secret_value()
    if security.sasl_password_file is not None:
        try:
            return security.sasl_password_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(
                f"kafka.security.sasl_password_file {security.sasl_password_file} cannot be "
                f"read: {error.strerror}"
            ) from None
    return None


def parse_sink_url(url: str) -> tuple[list[str], str]:
    """``kafka://host:port[,host:port]/topic`` → (bootstrap servers, topic)."""
    parts = urlsplit(url)
    topic = parts.path.strip("/")
    servers = [server for server in parts.netloc.split(",") if server]
    if parts.scheme != "kafka" or not servers or not topic:
        raise ConfigError(f"expected kafka://host:port/topic, got {url!r}")
    return servers, topic


def ensure_topics(
    settings: dict[str, Any], config: KafkaConfig, topics: Sequence[str], *, wait: float = 30.0
) -> None:
    """Create missing topics with the configured partitions and replication, and wait (up
    to ``wait`` seconds) until each of their partitions has a leader."""
    # kafka-python loads its whole protocol (about 8 MiB, 0.2 s); the sidecar's sink needs it
    # only with its first batch, so it is imported where a client is made, not with this module.
    from kafka.admin import KafkaAdminClient, NewTopic  # noqa: PLC0415
    from kafka.errors import TopicAlreadyExistsError  # noqa: PLC0415

    admin = KafkaAdminClient(**settings)
    try:
        existing = set(admin.list_topics())
        missing = [name for name in topics if name not in existing]
        if missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            name,
                            num_partitions=config.partitions,
                            replication_factor=config.replication_factor,
                        )
                        for name in missing
                    ]
                )
                log.info("created Kafka topic(s) %s", ", ".join(missing))
            except TopicAlreadyExistsError:
                pass  # another process won the race
        if wait > 0:
            _await_leaders(admin, topics, wait)
    finally:
        admin.close()


def _await_leaders(admin: KafkaAdminClient, topics: Sequence[str], wait: float) -> None:
    """Return once every partition of ``topics`` has a leader (or ``wait`` s have passed).

    A consumer that joins its group while a topic it subscribes to is still electing
    leaders can be handed no partitions of it, and only notices on its next metadata
    refresh, minutes later; waiting here for the brand-new topics makes the first
    assignment whole.
    """
    deadline = time.monotonic() + wait
    while True:
        described = admin.describe_topics(list(topics))
        led = all(
            topic["error_code"] == 0
            and topic["partitions"]
            and all(part["leader_id"] >= 0 for part in topic["partitions"])
            for topic in described
        )
        if led or time.monotonic() >= deadline:
            if not led:
                log.warning("Kafka topic(s) %s still have partitions without a leader", topics)
            return
        time.sleep(0.1)


def to_message(event: CapturedEvent, source: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of an inference event in CloudEvents binary mode."""
    request = event.request
    cloud_event = CloudEvent(
        attributes={
            "type": INFERENCE_TYPE,
            "source": source,
            "id": request.event_id,
            "time": request.ts,
            "datacontenttype": "application/json",
        },
        data=dumps(encode_event(event)).encode(),
    )
    message = binding.to_binary(cloud_event, _FORMAT, key_mapper=lambda _e: request.model)
    key = request.model.encode()
    return key, message.value, list(message.headers.items())


def label_message(
    label: dict[str, Any], source: str, time: datetime, event_id: str
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a label in CloudEvents binary mode."""
    cloud_event = CloudEvent(
        attributes={
            "type": LABEL_TYPE,
            "source": source,
            "id": event_id,
            "time": time,
            "datacontenttype": "application/json",
        },
        data=dumps(label).encode(),
    )
    message = binding.to_binary(cloud_event, _FORMAT)
    # Keyed by what the label is for, so a correction lands in the same partition as the
    # label it corrects and is stored after it (unkeyed labels were spread at random).
    target = label.get("instance_id") or label.get("request_id")
    return (str(target).encode() if target else None), message.value, list(message.headers.items())


def from_message(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> tuple[str, Any]:
    """The CloudEvent type and payload of a message; EventFormatError says what is wrong.

    Inference events come back as ``CapturedEvent``; labels as their JSON object.

    This reads the binary-mode attributes straight from the headers rather than through
    the SDK's ``from_binary``: measured on the collector, the SDK spent ~45 us per event
    (it parses ``ce_time`` with dateutil and the JSON twice), a third of everything the
    collector does per event. The contract checked is the same: spec 1.0, id, source,
    type, JSON content.
    """
    if value is None:
        raise EventFormatError("message has no value (a tombstone?)")
    attributes = {
        name.lower(): header
        for name, header in headers
        if header is not None and (name[:3].lower() == "ce_" or name.lower() == "content-type")
    }
    if attributes.get("ce_specversion") != b"1.0":
        raise EventFormatError("not a CloudEvent in binary mode: no ce_specversion 1.0 header")
    missing = [name for name in ("ce_id", "ce_source", "ce_type") if not attributes.get(name)]
    if missing:
        raise EventFormatError(f"not a CloudEvent: missing {', '.join(missing)} header(s)")
    kind = attributes["ce_type"].decode("utf-8", errors="replace")
    if kind not in (INFERENCE_TYPE, LABEL_TYPE):
        raise EventFormatError(
            f"unknown event type {kind!r}; expected {INFERENCE_TYPE} or {LABEL_TYPE}"
        )
    content_type = attributes.get("content-type", b"application/json")
    if not content_type.startswith(b"application/json"):
        raise EventFormatError(f"{kind} data must be application/json, got {content_type!r}")
    if kind == INFERENCE_TYPE:
        return kind, decode_event(value)
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise EventFormatError(f"label event data is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise EventFormatError(f"label event data must be a JSON object, got {type(data).__name__}")
    return kind, data
