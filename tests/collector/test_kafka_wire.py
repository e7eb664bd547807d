"""The Kafka wire form: what the sink writes, the collector reads back exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.kafka import (
    INFERENCE_TYPE,
    LABEL_TYPE,
    client_settings,
    from_message,
    label_message,
    parse_sink_url,
    to_message,
)
from modeltap.config import KafkaConfig
from modeltap.errors import ConfigError
from modeltap.events import CapturedEvent, EventFormatError
from modeltap.schema import PredictionRecord, RequestRecord

T0 = datetime(2026, 11, 25, 12, 30, 1, 250000, tzinfo=UTC)
EVENT = CapturedEvent(
    RequestRecord(
        event_id="e1",
        request_id="r1",
        model="churn",
        version="v2",
        ts=T0,
        latency_ms=3.5,
        status_code=200,
        upstream_latency_ms=3.0,
        request_bytes=10,
        response_bytes=5,
        capture_note=None,
    ),
    (
        PredictionRecord(
            event_id="e1",
            row_index=0,
            request_id="r1",
            model="churn",
            version="v2",
            ts=T0,
            features={"age": 41, "plan": "pro"},
            prediction=1,
            score=0.8,
            instance_id="c-9",
        ),
    ),
)


def test_inference_events_round_trip_through_the_cloudevents_binding() -> None:
    key, value, headers = to_message(EVENT, "/modeltap/sidecar/churn")
    names = dict(headers)
    assert key == b"churn"
    assert names["ce_specversion"] == b"1.0"
    assert names["ce_type"] == INFERENCE_TYPE.encode()
    assert names["ce_id"] == b"e1"
    assert names["ce_time"] == b"2026-11-25T12:30:01.250000Z"
    kind, decoded = from_message(key, value, headers)
    assert kind == INFERENCE_TYPE
    assert decoded == EVENT


def test_class_probabilities_travel_only_where_a_row_has_them() -> None:
    from dataclasses import replace

    from modeltap.events import decode_events, encode_event, encode_events

    row = replace(EVENT.predictions[0], class_scores={"a": 0.25, "b": 0.75})
    event = CapturedEvent(EVENT.request, (row, replace(row, row_index=1, class_scores=None)))
    assert decode_events(encode_events([event])) == [event]
    first, second = encode_event(event)["rows"]
    assert first["class_scores"] == {"a": 0.25, "b": 0.75}
    assert "class_scores" not in second  # the wire of every other model is as it was
    _, value, headers = to_message(event, "/modeltap/sidecar/churn")
    assert from_message(b"churn", value, headers)[1] == event


def test_labels_round_trip() -> None:
    key, value, headers = label_message({"request_id": "r1", "label": 0}, "/x", T0, "l1")
    assert from_message(key, value, headers) == (LABEL_TYPE, {"request_id": "r1", "label": 0})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, v: ([], v), "not a CloudEvent in binary mode"),
        (lambda h, v: ([x for x in h if x[0] != "ce_id"], v), "missing ce_id header"),
        (
            lambda h, v: ([(k, b"0.3" if k == "ce_specversion" else x) for k, x in h], v),
            "no ce_specversion 1.0",
        ),
        (
            lambda h, v: ([(k, b"x.y" if k == "ce_type" else x) for k, x in h], v),
            "unknown event type 'x.y'",
        ),
        (
            lambda h, v: ([(k, b"text/csv" if k == "content-type" else x) for k, x in h], v),
            "must be application/json",
        ),
        (lambda h, v: (h, b"{oops"), "invalid event: not JSON"),
        (
            lambda h, v: (h, v.replace(b'"status_code":200', b'"status_code":"ok"')),
            "invalid event: status_code",
        ),
    ],
)
def test_what_cannot_be_read_says_why(change: object, reason: str) -> None:
    key, value, headers = to_message(EVENT, "/s")
    changed_headers, changed_value = change(headers, value)  # type: ignore[operator]
    with pytest.raises(EventFormatError, match=reason):
        from_message(key, changed_value, changed_headers)


def test_tombstones_and_bad_labels() -> None:
    with pytest.raises(EventFormatError, match="tombstone"):
        from_message(b"k", None, [])
    key, _, headers = label_message({"label": 1}, "/x", T0, "l1")
    with pytest.raises(EventFormatError, match="label event data is not JSON"):
        from_message(key, b"[1,", headers)
    with pytest.raises(EventFormatError, match="must be a JSON object, got list"):
        from_message(key, b"[1]", headers)


def test_client_settings_carry_tls_and_sasl_from_values_or_files(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    config = KafkaConfig.model_validate(
        {
            "bootstrap_servers": "k1:9093,k2:9093",
            "security": {
                "protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": "modeltap",
                "sasl_password_file": str(secret),
                "ssl_cafile": "/etc/ca.pem",
            },
        }
    )
    settings = client_settings(config)
    assert settings["bootstrap_servers"] == ["k1:9093", "k2:9093"]
    assert (settings["security_protocol"], settings["sasl_mechanism"]) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert settings["sasl_plain_password"] == "from-a-file"
    assert settings["ssl_cafile"] == "/etc/ca.pem"
    assert "from-a-file" not in repr(config)  # the config never shows the secret itself
    plain = client_settings(KafkaConfig())
    assert "sasl_plain_password" not in plain
    assert plain["security_protocol"] == "PLAINTEXT"


def test_sink_urls() -> None:
    assert parse_sink_url("kafka://a:1,b:2/events") == (["a:1", "b:2"], "events")
    with pytest.raises(ConfigError, match="expected kafka://host:port/topic"):
        parse_sink_url("kafka://a:1")
