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

import hashlib
import logging
from collections.abc import Callable
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
from monitor.codec import dumps
from monitor.errors import StorageError, StorageUnavailableError
from monitor.events import to_batch
from monitor.store.pairing import Half, LoggedHalf, LoggedPair

log = logging.getLogger("modeltap.cloudevents")

_TYPES: dict[str, tuple[str, Half]] = {
    "org.kubeflow.serving.inference.request": ("kserve", "request"),
    "org.kubeflow.serving.inference.response": ("kserve", "response"),
    "io.seldon.serving.inference.request": ("mlserver", "request"),
    "io.seldon.serving.inference.response": ("mlserver", "response"),
}


def read_event(headers: dict[str, str], body: bytes) -> tuple[BaseCloudEvent, bool]:
    """The CloudEvent of one HTTP message, and whether the sender gave it a ``time``.

    The SDK fills a missing ``time`` with its own wall clock, which would date an event by
    when the library parsed it rather than by our (injectable) receive clock; recording
    whether the attribute was really there lets the caller choose the receive time instead.
    """
    given: list[bool] = []

    def factory(attributes: dict[str, Any], data: Any) -> BaseCloudEvent:
        given.append("time" in attributes)
        version = str(attributes.get("specversion", "1.0"))
        return get_event_factory_for_version(version)(attributes, data)

    event = binding.from_http(
        binding.HTTPMessage(headers=headers, body=body), JSONFormat(), factory
    )
    return event, bool(given and given[0])


def logged_half(event: Any, received_at: datetime, *, timed: bool = True) -> LoggedHalf:
    """The half of a call one CloudEvent carries; Refused (4xx) if it is not one of ours.

    An event without ``time`` (``timed`` false) is dated by when it was received.
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
    data = event.get_data()
    body = data if isinstance(data, bytes) else dumps(data).encode()
    time = (event.get_time() if timed else None) or received_at
    version = str(event.get_extension("endpoint") or "") if source == "kserve" else ""
    return LoggedHalf(
        pair_id=pair_id[:255],
        half=half,
        source=source,
        model=model[:128],
        version=version[:128],
        body=body,
        time=time.astimezone(UTC),
        received_at=received_at,
    )


def pair_exchange(pair: LoggedPair) -> Exchange:
    """A paired (or expired, half-missing) call as the proxy would have seen it."""
    started = pair.request_time or pair.response_time or pair.received_at
    latency = 0.0
    if pair.request_time is not None and pair.response_time is not None:
        latency = max(0.0, (pair.response_time - pair.request_time).total_seconds() * 1000)
    note = None
    if pair.response_body is None:
        note = "no_body: the response was never logged"
    elif pair.request_body is None:
        note = "no_body: the request was never logged"
    event_id = hashlib.sha256(f"{pair.source}:{pair.pair_id}".encode()).hexdigest()[:32]
    return Exchange(
        event_id=event_id,
        request_id=pair.pair_id,
        model=pair.model,
        version=pair.version,
        started=started,
        latency_ms=latency,
        status=200,
        upstream_latency_ms=latency,
        request_bytes=len(pair.request_body or b""),
        response_bytes=len(pair.response_body or b""),
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
        try:
            body = await request.read()
            try:
                event, timed = read_event(dict(request.headers), body)
            except (BaseCloudEventException, ValueError, TypeError) as error:
                raise Refused(400, f"not a CloudEvent: {error}") from None
            half = logged_half(event, self._clock(), timed=timed)
            pair = await self._runner.call(self._runner.store.pair_half, half)
            if pair is None:
                return web.json_response({"status": "waiting for the other half"}, status=202)
            await self.store_pair(pair)
            await self._runner.call(self._runner.store.forget_pair, pair.pair_id)
        except Refused as refused:
            self._metrics.rejected.inc()
            return refused.response()
        except StorageUnavailableError as error:
            return Refused(503, str(error)).response()
        except StorageError as error:
            log.error("storing a logged call failed: %s", error)
            return Refused(500, "storing the call failed; the logger may retry").response()
        return web.json_response({"status": "stored"}, status=202)

    async def store_pair(self, pair: LoggedPair) -> None:
        """Turn a pair into records and write them (idempotent on the derived event id)."""
        event = self._capturer.to_event(pair_exchange(pair))
        await self._runner.write(to_batch([event]))
        self._metrics.logged_calls.inc()

    async def expire(self, older_than: timedelta) -> int:
        """Store halves whose partner never came, as requests without rows; returns how many."""
        stale = await self._runner.call(
            self._runner.store.stale_pending, self._clock() - older_than
        )
        for pair in stale:
            await self.store_pair(pair)
            await self._runner.call(self._runner.store.forget_pair, pair.pair_id)
        return len(stale)
