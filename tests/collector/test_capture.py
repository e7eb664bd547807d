"""Exchanges become records; unreadable bodies become reasons, never exceptions."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest
from pydantic import SecretStr

from collector.capture import Capturer, Exchange, pseudonym
from modeltap.config import CaptureConfig, FeatureConfig, ModelConfig, PayloadConfig
from tests.collector.fakes import exchange

MODEL = ModelConfig(
    name="churn",
    task="classification",
    features=[
        FeatureConfig(name="age", type="numerical"),
        FeatureConfig(name="plan", type="categorical"),
    ],
    payload=PayloadConfig(instance_id_field="id"),
    capture=CaptureConfig(max_body_bytes=1000, drop_fields=["ssn"], hash_fields=["email"]),
)


def capture(ex: Exchange, model: ModelConfig = MODEL) -> Any:
    return Capturer({model.name: model}).to_event(ex)


def test_a_kserve_call_becomes_a_request_and_its_rows() -> None:
    ex = exchange(
        1,
        body=b'{"instances": [[41, "pro"], {"age": 30, "plan": "basic", "id": 7}]}',
        answer=b'{"predictions": [1, 0]}',
    )
    ex.protocol = "kserve_v1"
    event = capture(ex)
    assert event.request.capture_note is None
    assert [row.features for row in event.predictions] == [
        {"age": 41, "plan": "pro"},
        {"age": 30, "plan": "basic"},
    ]
    assert [row.instance_id for row in event.predictions] == [None, "7"]
    assert [row.label_key for row in event.predictions] == ["r:r1:0", "i:7"]
    assert event.predictions[1].ts == ex.started


@pytest.mark.parametrize(
    ("body", "encoding", "reason"),
    [
        (b"not json", None, "unparsed: request body is not JSON (Expecting value at 0)"),
        (b'{"a": "\xff"}', None, "unparsed: request body is not UTF-8 (byte 7)"),
        (gzip.compress(b'{"a": 1}')[:-6], "gzip", "unparsed: request body is truncated gzip data"),
        (b"plain", "gzip", "unparsed: request body is not valid gzip data"),
        (b"x", "br", "unparsed: request content-encoding 'br' is not decoded"),
        (
            gzip.compress(b"[" + b"0," * 2000 + b"0]"),
            "gzip",
            "unparsed: request body decompresses past max_body_bytes (1000)",
        ),
        (b"[" * 100_000, None, "unparsed: request body nests too deeply"),
    ],
)
def test_unreadable_bodies_give_reasons(body: bytes, encoding: str | None, reason: str) -> None:
    ex = exchange(1, body=body)
    ex.request_encoding = encoding
    event = capture(ex)
    assert event.request.capture_note == reason
    assert event.predictions == ()


def test_gzip_and_deflate_copies_are_decoded() -> None:
    ex = exchange(1, body=gzip.compress(b'{"age": 5}'), answer=zlib.compress(b"[1]"))
    ex.request_encoding, ex.response_encoding = "gzip", "deflate"
    assert capture(ex).predictions[0].features == {"age": 5}
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    ex = exchange(2, answer=raw.compress(b"[1]") + raw.flush())
    ex.response_encoding = "deflate"  # raw deflate, as some servers send it
    assert capture(ex).predictions[0].prediction == 1


def test_shape_problems_are_reasons_too() -> None:
    event = capture(exchange(1, body=b'[{"a": 1}, {"a": 2}]', answer=b"[1]"))
    assert event.request.capture_note == "unparsed: 2 instance(s) but 1 prediction(s)"


@pytest.mark.parametrize(
    ("status", "error", "note", "expected"),
    [
        (500, None, None, "no_prediction: status 500"),
        (502, "upstream_unreachable", None, None),
        (200, None, "sampled_out", "sampled_out"),
        (200, None, "too_large", "too_large"),
    ],
)
def test_calls_without_rows_keep_their_request(
    status: int, error: str | None, note: str | None, expected: str | None
) -> None:
    ex = exchange(1, status=status)
    ex.error, ex.note = error, note
    event = capture(ex)
    assert event.predictions == ()
    assert event.request.capture_note == expected
    assert event.request.error == error
    assert event.request.status_code == status


def test_fields_are_dropped_or_hashed_before_leaving() -> None:
    body = b'{"age": 1, "ssn": "123", "email": "ada@example.com"}'
    row = capture(exchange(1, body=body)).predictions[0]
    assert row.features == {"age": 1, "email": pseudonym("ada@example.com", None)}
    keyed = MODEL.model_copy(
        update={"capture": MODEL.capture.model_copy(update={"hash_key": SecretStr("k1")})}
    )
    row2 = capture(exchange(1, body=body), keyed).predictions[0]
    assert row2.features["email"] == pseudonym("ada@example.com", b"k1")
    assert row2.features["email"] != row.features["email"]
    assert row2.features["email"].startswith("sha256:")


def test_models_not_in_the_config_use_defaults() -> None:
    event = Capturer({}).to_event(exchange(1, model="unknown"))
    assert event.predictions[0].features == {"a": 1}
