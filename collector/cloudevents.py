"""``POST /v1/cloudevents``: calls logged by KServe's and MLServer's inference loggers.

Point a KServe InferenceService's ``logger.url`` (or MLServer's logging endpoint) here and
modeltap stores its calls like the sidecar's: each server sends the request and the response
as two CloudEvents sharing an id; the halves are paired in the database (either may come first,
to any replica), then turned into records through the same payload adapters.

Accepted types (binary or structured mode, CloudEvents 1.0 or MLServer's 0.3):
``org.kubeflow.serving.inference.request|response`` (model from the ``inferenceservicename``
extension, version from ``endpoint``, e.g. default/canary) and
``io.seldon.serving.inference.request|response`` (model from ``modelid``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import http as binding
from cloudevents.core.bindings.common import get_event_factory_for_version
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat

from collector.capture import Capturer, Exchange
from collector.ingest import IngestMetrics, Refused, StoreRunner
from modeltap.codec import dumps
from modeltap.errors import StorageDataError, StorageError, StorageUnavailableError
from modeltap.events import to_batch
from modeltap.schema import MAX_ID, MAX_NAME, bounded, in_range
from modeltap.store import Half, LoggedHalf, LoggedPair

log = logging.getLogger("modeltap.cloudevents")

_TYPES: dict[str, tuple[str, Half]] = {
    "org.kubeflow.serving.inference.request": ("kserve", "request"),
    "org.kubeflow.serving.inference.response": ("kserve", "response"),
    "io.seldon.serving.inference.request": ("mlserver", "request"),
    "io.seldon.serving.inference.response": ("mlserver", "response"),
}


# What the status of a call whose response was never logged is stored as. KServe's agent
# logs a response only when the model answered 200, so a request half alone means the call
# failed (or its response event was lost); 599 is outside every standard range, so it is
# recognisable, and it counts in the error rate like any other non-2xx answer.
UNANSWERED = 599


def read_event(headers: Mapping[str, str], body: bytes) -> tuple[BaseCloudEvent, bool]:
    """The CloudEvent of one HTTP message, and whether the sender gave it a ``time``.

    The SDK fills a missing ``time`` with its own wall clock, which would date an event by
    when the library parsed it rather than by our (injectable) receive clock; recording
    whether the attribute was really there lets the caller choose the receive time instead.
    Raises Refused (400) for anything that is not one CloudEvent.
    """
    content_type = headers.get("Content-Type", "").lower()
    if content_type.startswith("application/cloudevents-batch"):
        raise Refused(400, "CloudEvents batch mode is not supported; send one event per request")
    given: list[bool] = []

    def factory(attributes: dict[str, Any], data: Any) -> BaseCloudEvent:
        given.append("time" in attributes)
        version = str(attributes.get("specversion", "1.0"))
        return get_event_factory_for_version(version)(attributes, data)

    message = binding.HTTPMessage(headers=dict(headers), body=body)
    try:
        event = binding.from_http(message, JSONFormat(), factory)
    except RecursionError:
        raise Refused(400, "not a CloudEvent: its JSON nests too deeply") from None
    except AttributeError:  # the SDK's reading of a structured event that is no object
        raise Refused(400, "not a CloudEvent: a structured event must be a JSON object") from None
    except (BaseCloudEventException, ValueError, TypeError, OverflowError) as error:
        raise Refused(400, f"not a CloudEvent: {error}") from None
    return event, bool(given and given[0])


def _caller_request_id(event: Any) -> str | None:
    """The caller's X-Request-ID, from the ``metadata`` extension KServe's agent fills with
    the headers named in the logger's ``metadataHeaders`` (a JSON map of lists)."""
    metadata = event.get_extension("metadata")
    if not metadata:
        return None
    try:
        headers = json.loads(metadata) if isinstance(metadata, str | bytes) else metadata
    except (ValueError, RecursionError):
        return None
    if not isinstance(headers, dict):
        return None
    for name, values in headers.items():
        if str(name).lower() == "x-request-id":
            value = values[0] if isinstance(values, list) and values else values
            return str(value) if value not in (None, "", []) else None
    return None


def logged_half(
    event: Any, received_at: datetime, *, timed: bool = True, body: bytes | None = None
) -> LoggedHalf:
    """The half of a call one CloudEvent carries; Refused (4xx) if it is not one of ours.

    An event without ``time`` (``timed`` false) is dated by when it was received. ``body``
    is the HTTP body of a binary-mode event: its data exactly as the server sent it, so
    sizes are true and a body that is not JSON (curl's form encoding) is still read as
    the JSON it holds.
    """
    kind = event.get_type()
    if kind not in _TYPES:
        raise Refused(
            400,
            f"unsupported CloudEvent type {kind!r}; expected one of " + ", ".join(sorted(_TYPES)),
        )
    source, half = _TYPES[kind]
    names = ("inferenceservicename",) if source == "kserve" else ("modelid", "inferenceservicename")
    model = next((str(value) for name in names if (value := event.get_extension(name))), None)
    if model is None:
        raise Refused(
            422,
            f"{kind} event names no model: expected the "
            f"'{names[0]}' extension (ce-{names[0]} header)",
        )
    pair_id = str(event.get_extension("requestid") or event.get_id())
    if body is None:
        data = event.get_data()
        body = (
            data
            if isinstance(data, bytes)
            else data.encode("utf-8", "surrogatepass")
            if isinstance(data, str)
            else dumps(data).encode()
        )
    time = (event.get_time() if timed else None) or received_at
    if not in_range(time):
        raise Refused(422, f"{kind} event time {time.isoformat()} is not between 1970 and 9999")
    # KServe's agent sends the predictor's endpoint (default, canary); without one the
    # call went to the default predictor.
    version = str(event.get_extension("endpoint") or "default") if source == "kserve" else ""
    caller_id = _caller_request_id(event)
    return LoggedHalf(
        pair_id=bounded(pair_id, MAX_ID),
        half=half,
        source=source,
        model=bounded(model, MAX_NAME),
        version=bounded(version, MAX_NAME),
        body=body,
        time=time.astimezone(UTC),
        received_at=received_at,
        request_id=None if caller_id is None else bounded(caller_id, MAX_ID),
    )


def pair_exchange(pair: LoggedPair) -> Exchange:
    """A paired (or expired, half-missing) call as the proxy would have seen it."""
    started = pair.request_time or pair.response_time or pair.received_at
    latency: float | None = None
    if pair.request_time is not None and pair.response_time is not None:
        latency = max(0.0, (pair.response_time - pair.request_time).total_seconds() * 1000)
    note, error, status = None, None, 200
    if pair.response_body is None:
        note = "no_body: the response was never logged"
        error, status = "response_not_logged", UNANSWERED
    elif pair.request_body is None:
        note = "no_body: the request was never logged"
    event_id = hashlib.sha256(f"{pair.source}:{pair.pair_id}".encode()).hexdigest()[:32]
    return Exchange(
        event_id=event_id,
        request_id=pair.request_id or pair.pair_id,
        model=pair.model,
        version=pair.version,
        started=started,
        latency_ms=latency,
        status=status,
        upstream_latency_ms=latency,
        request_bytes=len(pair.request_body or b""),
        response_bytes=len(pair.response_body or b""),
        error=error,
        note=note,
        request_body=pair.request_body,
        response_body=pair.response_body,
    )


class CloudEventsHandler:
    """Receives logged halves, pairs them, stores complete calls."""

    def __init__(
        self,
        runner: StoreRunner,
        capturer: Capturer,
        metrics: IngestMetrics,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._runner = runner
        self._capturer = capturer
        self._metrics = metrics
        self._clock = clock

    async def handle(self, request: web.Request) -> web.Response:
        # Answers are 200: KServe's agent counts every other status, 202 included, as a
        # failed delivery and logs an error for it.
        try:
            body = await request.read()
            event, timed = read_event(request.headers, body)
            structured = request.content_type.startswith("application/cloudevents")
            half = logged_half(event, self._clock(), timed=timed, body=None if structured else body)
            pair = await self._runner.call(self._runner.store.pair_half, half)
            if pair is None:
                return web.json_response({"status": "waiting for the other half"})
            await self.store_pair(pair)
        except Refused as refused:
            self._metrics.rejected.inc()
            return refused.response()
        except StorageUnavailableError as error:
            return Refused(503, str(error)).response()
        except StorageError as error:
            log.error("storing a logged call failed: %s", error)
            return Refused(500, "storing the call failed; the logger may retry").response()
        return web.json_response({"status": "stored"})

    async def store_pair(self, pair: LoggedPair) -> None:
        """Turn a pair into records, write them (idempotent on the derived event id), and
        forget the pair. A pair whose data the database refuses is dropped with a log line
        and a 422 (Refused), so neither the logger's retries nor expiry try it for ever."""
        exchange = pair_exchange(pair)
        event = self._capturer.to_event(exchange)
        try:
            await self._runner.write(to_batch([event]))
        except StorageDataError as error:
            log.error("dropped logged call %s: %s", pair.pair_id, error)
            await self._runner.call(self._runner.store.forget_pair, pair.pair_id)
            raise Refused(422, f"the call cannot be stored: {error}") from None
        await self._runner.call(self._runner.store.forget_pair, pair.pair_id)
        self._metrics.logged_calls.inc()
        if exchange.status == UNANSWERED:
            self._metrics.unanswered_calls.inc()

    async def expire(self, older_than: timedelta) -> int:
        """Store halves whose partner never came, as requests without rows; returns how many.

        A request without its response is stored as failed (status 599): KServe's agent
        logs responses only for calls the model answered with 200.
        """
        stale = await self._runner.call(
            self._runner.store.stale_pending, self._clock() - older_than
        )
        for pair in stale:
            with contextlib.suppress(Refused):  # logged and forgotten in store_pair
                await self.store_pair(pair)
        return len(stale)
