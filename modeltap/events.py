"""A captured event (one request and its prediction rows) and its JSON wire form.

The same encoding is written to the sidecar's disk spool and, as the body of a CloudEvent,
to Kafka; ``decode_event`` validates it field by field so a malformed message names what is
wrong instead of failing somewhere downstream.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modeltap.codec import dumps
from modeltap.errors import InputError
from modeltap.schema import EventBatch, PredictionRecord, RequestRecord, utc

WIRE_VERSION = 1


class EventFormatError(InputError):
    """A serialized event does not match the schema; the message names the field."""


@dataclass(frozen=True, slots=True)
class CapturedEvent:
    """One HTTP call and the prediction rows parsed from it (none if unparsed or sampled out)."""

    request: RequestRecord
    predictions: tuple[PredictionRecord, ...] = ()


def to_batch(events: Iterable[CapturedEvent]) -> EventBatch:
    """Flatten events into the store's batch form."""
    requests: list[RequestRecord] = []
    predictions: list[PredictionRecord] = []
    for event in events:
        requests.append(event.request)
        predictions.extend(event.predictions)
    return EventBatch(requests=requests, predictions=predictions)


def encode_event(event: CapturedEvent) -> dict[str, Any]:
    """The JSON-ready wire form; rows carry only what differs from their request."""
    request = event.request
    return {
        "v": WIRE_VERSION,
        "event_id": request.event_id,
        "request_id": request.request_id,
        "model": request.model,
        "version": request.version,
        "ts": utc(request.ts).isoformat(),
        "latency_ms": request.latency_ms,
        "upstream_latency_ms": request.upstream_latency_ms,
        "status_code": request.status_code,
        "request_bytes": request.request_bytes,
        "response_bytes": request.response_bytes,
        "error": request.error,
        "capture_note": request.capture_note,
        "rows": [
            {
                "row_index": row.row_index,
                "instance_id": row.instance_id,
                "features": dict(row.features),
                "prediction": row.prediction,
                "score": row.score,
                # Only when there are some: most models' rows stay as they always were.
                **({} if row.class_scores is None else {"class_scores": row.class_scores}),
            }
            for row in event.predictions
        ],
    }


def encode_events(events: Sequence[CapturedEvent]) -> bytes:
    """JSON lines, one event per line."""
    return "".join(dumps(encode_event(event)) + "\n" for event in events).encode()


# Built on the first decode, not at import: a sidecar encodes every event but decodes only
# when it replays its spool, and its start is on every pod's path to ready.
class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    row_index: int = Field(ge=0)
    instance_id: str | None = None
    features: dict[str, Any]
    prediction: Any = None
    score: float | None = None
    class_scores: list[float] | dict[str, float] | None = None


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    v: int = Field(default=WIRE_VERSION, ge=1, le=WIRE_VERSION)
    event_id: str = Field(min_length=1, max_length=64)
    request_id: str = Field(min_length=1, max_length=255)
    model: str = Field(min_length=1, max_length=128)
    version: str = Field(default="", max_length=128)
    ts: datetime
    latency_ms: float | None = Field(ge=0, allow_inf_nan=False)
    upstream_latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    status_code: int = Field(ge=0, le=999)
    request_bytes: int = Field(default=0, ge=0)
    response_bytes: int = Field(default=0, ge=0)
    error: str | None = Field(default=None, max_length=64)
    capture_note: str | None = None
    rows: list[_Row] = Field(default_factory=list)


def decode_event(data: bytes | str | dict[str, Any]) -> CapturedEvent:
    """Validate and rebuild an event; raises EventFormatError naming the bad field."""
    try:
        if isinstance(data, dict):
            parsed = _Event.model_validate(data)
        else:
            parsed = _Event.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise EventFormatError(f"invalid event: not JSON ({first['msg']})") from None
        where = ".".join(str(part) for part in first["loc"]) or "(event)"
        raise EventFormatError(f"invalid event: {where}: {first['msg']}") from None
    if parsed.ts.tzinfo is None:
        raise EventFormatError("invalid event: ts: needs a timezone (UTC expected)")
    ts = utc(parsed.ts)
    request = RequestRecord(
        event_id=parsed.event_id,
        request_id=parsed.request_id,
        model=parsed.model,
        version=parsed.version,
        ts=ts,
        latency_ms=parsed.latency_ms,
        status_code=parsed.status_code,
        upstream_latency_ms=parsed.upstream_latency_ms,
        request_bytes=parsed.request_bytes,
        response_bytes=parsed.response_bytes,
        error=parsed.error,
        capture_note=parsed.capture_note,
    )
    rows = tuple(
        PredictionRecord(
            event_id=parsed.event_id,
            row_index=row.row_index,
            request_id=parsed.request_id,
            model=parsed.model,
            version=parsed.version,
            ts=ts,
            features=row.features,
            prediction=row.prediction,
            score=row.score,
            instance_id=row.instance_id,
            class_scores=row.class_scores,
        )
        for row in parsed.rows
    )
    return CapturedEvent(request, rows)


def decode_events(payload: bytes) -> list[CapturedEvent]:
    """The events in a JSON-lines payload written by ``encode_events``."""
    return [decode_event(line) for line in payload.splitlines() if line.strip()]
