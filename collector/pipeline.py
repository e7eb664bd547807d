"""Capture off the hot path: a bounded queue, a batching worker, the spool, replay.

The request path only calls ``offer`` (append to a deque; never waits, never raises). A
worker turns queued exchanges into events in batches. Each batch goes to the sink if the sink
is idle and healthy, otherwise straight to the disk spool: a slow or dead sink therefore never
backs up the memory queue, it only makes the spool grow. A replayer feeds the spool to the
sink, oldest batch first, whenever the sink is free. Order is kept: while anything is spooled,
new batches queue behind it, and a batch whose write fails goes back to the spool's front.
Events are dropped (and counted) only when the queue and the spool are both full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from collector.capture import UNPARSED, Capturer, Exchange
from collector.metrics import SidecarMetrics
from collector.sinks import Sink
from collector.spool import Spool
from monitor.events import CapturedEvent, decode_events, encode_events

log = logging.getLogger("modeltap.capture")

_REPLAY_FILES = 64
_REPLAY_BYTES = 4 * 2**20


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    queue_size: int
    queue_max_bytes: int
    batch_size: int
    flush_interval: float
    sink_timeout: float
    retry_min: float = 0.2
    retry_max: float = 2.0


class _Breaker:
    """After a sink failure, wait before trying again, doubling up to a ceiling."""

    def __init__(self, minimum: float, maximum: float, clock: Callable[[], float]) -> None:
        self._minimum, self._maximum, self._clock = minimum, maximum, clock
        self._delay = 0.0
        self._retry_at = 0.0

    @property
    def healthy(self) -> bool:
        return self._delay == 0.0

    def allows(self) -> bool:
        return self._clock() >= self._retry_at

    def fail(self) -> None:
        self._delay = min(self._maximum, max(self._minimum, self._delay * 2))
        self._retry_at = self._clock() + self._delay

    def succeed(self) -> None:
        self._delay = 0.0
        self._retry_at = 0.0


class Pipeline:
    """Moves exchanges from the request path to the sink, via the spool when it must."""

    def __init__(
        self,
        capturer: Capturer,
        sink: Sink,
        spool: Spool,
        metrics: SidecarMetrics,
        settings: PipelineSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capturer = capturer
        self._sink = sink
        self._spool = spool
        self._metrics = metrics
        self._settings = settings
        self._clock = clock
        self._queue: deque[Exchange] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._breaker = _Breaker(settings.retry_min, settings.retry_max, clock)
        # The sink takes one write at a time; ``_busy`` is set before the write is even
        # scheduled, so two batches can never race each other into the sink.
        self._busy = False
        self._in_flight: list[CapturedEvent] | None = None
        self._sending: asyncio.Task[None] | None = None
        self._spooling = 0  # appends in progress count as spooled, for ordering
        self._spool_lock = asyncio.Lock()
        metrics.watch("modeltap_capture_queue_events", lambda: len(self._queue))
        metrics.watch("modeltap_capture_queue_capacity_events", lambda: settings.queue_size)
        metrics.watch("modeltap_capture_spool_bytes", lambda: spool.size)
        metrics.watch("modeltap_capture_spool_capacity_bytes", lambda: spool.max_bytes)
        metrics.watch("modeltap_capture_sink_up", lambda: 1.0 if self._breaker.healthy else 0.0)

    # -- the request path ---------------------------------------------------------------

    def offer(self, exchange: Exchange) -> None:
        """Queue an exchange for capture; drops (counted) when the memory queue is full."""
        held = exchange.held_bytes
        if (
            len(self._queue) >= self._settings.queue_size
            or self._queued_bytes + held > self._settings.queue_max_bytes
        ):
            self._metrics.dropped.inc()
            return
        self._queue.append(exchange)
        self._queued_bytes += held
        if len(self._queue) >= self._settings.batch_size:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- the worker ---------------------------------------------------------------------

    async def run(self) -> None:
        """Batch, convert and route until ``stop`` is called."""
        while not self._closing:
            if len(self._queue) < self._settings.batch_size:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.flush_interval):
                        await self._wake.wait()
            if self._queue and not self._closing:
                await self._route(await self._convert(self._take()))

    def _take(self) -> list[Exchange]:
        batch: list[Exchange] = []
        while self._queue and len(batch) < self._settings.batch_size:
            exchange = self._queue.popleft()
            self._queued_bytes -= exchange.held_bytes
            batch.append(exchange)
        return batch

    async def _convert(self, batch: list[Exchange]) -> list[CapturedEvent]:
        events: list[CapturedEvent] = []
        started = time.perf_counter()
        for exchange in batch:
            try:
                event = self._capturer.to_event(exchange)
            except Exception:  # a bug must cost one event's rows, never the pipeline
                log.exception("capturing request %s failed", exchange.request_id)
                exchange.note = UNPARSED + "internal error"
                exchange.request_body = exchange.response_body = None
                event = self._capturer.to_event(exchange)
            if (event.request.capture_note or "").startswith(UNPARSED):
                self._metrics.unparsed.inc()
            events.append(event)
            # Parsing is CPU work on the proxy's event loop: yield every millisecond so
            # requests keep flowing while a large batch is converted.
            if time.perf_counter() - started > 0.001:
                await asyncio.sleep(0)
                started = time.perf_counter()
        return events

    def _sink_free(self) -> bool:
        return (
            not self._busy
            and not self._spool.pending
            and not self._spooling
            and self._breaker.allows()
        )

    async def _route(self, events: list[CapturedEvent]) -> None:
        if self._sink_free():
            # The write runs on its own; the worker goes back to the queue at once.
            self._busy = True
            self._sending = asyncio.create_task(self._send_or_spool(events))
        else:
            await self._to_spool(events)

    async def _send_or_spool(self, events: list[CapturedEvent]) -> None:
        if await self._send(events):
            self._metrics.sent.inc(len(events))
        else:
            # Batches spooled while this one was in flight are younger: go before them.
            await self._to_spool(events, front=True)

    async def _send(self, events: list[CapturedEvent], timeout: float | None = None) -> bool:
        """One write to the sink within the timeout; False (and the breaker trips) if not.

        The caller has set ``_busy``; it is cleared once the write has settled.
        """
        self._busy = True
        write = asyncio.ensure_future(self._sink.write(events))
        self._in_flight = events
        limit = timeout or self._settings.sink_timeout
        try:
            # asyncio.timeout rather than wait_for, which on 3.11 can swallow a cancel that
            # arrives as the write completes, leaving a cancelled replayer running.
            async with asyncio.timeout(limit):
                await asyncio.shield(write)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # any sink failure means: keep the batch on disk
            self._metrics.sink_errors.inc()
            if self._breaker.healthy:
                reason = str(error) or (
                    f"no answer within {limit:g}s"
                    if isinstance(error, TimeoutError)
                    else type(error).__name__
                )
                log.warning("sink %s failed (%s); spooling to disk", self._sink.name, reason)
            self._breaker.fail()
            if write.done():
                self._settle()
            else:
                # A stalled write may still land; the sink stays "in flight" until then
                # so its single thread is not queued up behind it.
                write.add_done_callback(self._write_settled)
            return False
        self._settle()
        if not self._breaker.healthy:
            log.info("sink %s is back", self._sink.name)
        self._breaker.succeed()
        return True

    def _settle(self) -> None:
        self._busy = False
        self._in_flight = None

    def _write_settled(self, write: asyncio.Future[None]) -> None:
        self._settle()
        if not write.cancelled():
            write.exception()  # retrieved: the failure was already counted and logged

    async def _to_spool(self, events: list[CapturedEvent], *, front: bool = False) -> None:
        payload = encode_events(events)
        self._spooling += 1
        try:
            async with self._spool_lock:
                stored = await asyncio.to_thread(self._spool.append, payload, front=front)
        except OSError as error:
            log.error("spool %s unwritable: %s", self._spool.directory, error)
            stored = False
        finally:
            self._spooling -= 1
        (self._metrics.spooled if stored else self._metrics.dropped).inc(len(events))

    async def deliver(self, batch: list[Exchange]) -> None:
        """Convert a batch and return once it is with the sink or on disk (log-tail mode)."""
        events = await self._convert(batch)
        if self._sink_free():
            self._busy = True
            await self._send_or_spool(events)
        else:
            await self._to_spool(events)

    # -- the replayer -------------------------------------------------------------------

    async def replay(self) -> None:
        """Feed the spool to the sink, oldest batch first, whenever the sink will take it."""
        while not self._closing:
            ready = (
                self._spool.pending
                and not self._busy
                and not self._spooling
                and self._breaker.allows()
            )
            if not (ready and await self.replay_one()):
                await asyncio.sleep(0.05)

    async def replay_one(self) -> bool:
        """Deliver the spool's oldest batches in one write; True when they were accepted.

        Spooled batches are as small as traffic made them; replaying them merged (up to
        ``_REPLAY_FILES`` files, ``_REPLAY_BYTES``) drains an outage's backlog in seconds.
        """
        head = await asyncio.to_thread(self._spool.head, _REPLAY_FILES, _REPLAY_BYTES)
        if not head:
            return False
        events = [event for _, payload in head for event in decode_events(payload)]
        if self._busy or not await self._send(events):
            return False
        for name, _ in head:
            await asyncio.to_thread(self._spool.remove, name)
        self._metrics.sent.inc(len(events))
        self._metrics.replayed.inc(len(events))
        return True

    # -- shutdown -----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker and the replayer to return after what they hold."""
        self._closing = True
        self._wake.set()

    async def close(self, deadline: float) -> None:
        """Flush: the write in flight and the queue go to the sink if it answers before
        ``deadline`` (a ``clock()`` value), else to the spool for the next start."""
        self.stop()
        if self._sending is not None and not self._sending.done():
            try:
                async with asyncio.timeout(max(deadline - self._clock(), 0.01)):
                    await asyncio.shield(self._sending)
            except TimeoutError:
                self._sending.cancel()
                if self._in_flight is not None:
                    # Still stuck: keep the batch on disk; should the write land after
                    # all, the replayed copy is a duplicate the store ignores.
                    await self._to_spool(self._in_flight, front=True)
                    self._in_flight = None
        while self._queue:
            events = await self._convert(self._take())
            left = deadline - self._clock()
            if left > 0 and self._sink_free() and await self._send(events, timeout=left):
                self._metrics.sent.inc(len(events))
            else:
                await self._to_spool(events)
