"""Capture off the hot path: a bounded queue, a batching worker, the spool, replay.

The request path only calls ``offer`` (append to a deque; never waits, never raises). A
worker turns queued exchanges into events in batches. Each batch goes to the sink if the sink
is idle and healthy, otherwise straight to the disk spool: a slow or dead sink therefore never
backs up the memory queue, it only makes the spool grow. A replayer feeds the spool to the
sink, oldest batch first, whenever the sink is free. Order is kept: while anything is spooled,
new batches queue behind it, and a batch whose write fails goes back to the spool's front.
Events are dropped (and counted, with the reason) only when the queue and the spool are both
full or the disk refuses. An event the sink refuses for good, or a spooled line that cannot
be read back, is set aside in the spool's quarantine (counted and logged), never left to
block the events behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector.capture import UNPARSED, Capturer, Exchange
from collector.metrics import SidecarMetrics
from collector.sinks import Sink
from collector.spool import Spool
from modeltap.codec import dumps
from modeltap.events import (
    CapturedEvent,
    EventFormatError,
    decode_event,
    encode_event,
    encode_events,
)

log = logging.getLogger("modeltap.capture")

_REPLAY_FILES = 64
_REPLAY_BYTES = 4 * 2**20


def _entry(reason: str, **what: Any) -> bytes:
    """One quarantined item: why it was set aside, and the event (or the raw line)."""
    return dumps({"reason": reason, **what}).encode()


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
        # The sink's write in progress, whoever started it (the worker or the replayer).
        self._write: asyncio.Future[Any] | None = None
        self._in_flight: list[CapturedEvent] | None = None
        self._sending: asyncio.Task[None] | None = None
        self._spooling = 0  # appends in progress count as spooled, for ordering
        self._spool_lock = asyncio.Lock()
        self._spool_broken = False  # the last append failed on the disk
        self._accepted = 0  # events the last successful write stored (the rest: refused)
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
            self._metrics.dropped.labels("queue_full").inc()
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
            self._metrics.sent.inc(self._accepted)
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
        self._write = write
        try:
            # asyncio.timeout rather than wait_for, which on 3.11 can swallow a cancel that
            # arrives as the write completes, leaving a cancelled replayer running.
            async with asyncio.timeout(limit):
                refused = await asyncio.shield(write)
        except asyncio.CancelledError:
            # The replayer, cancelled at shutdown while the (shielded) write goes on: the
            # sink is busy until that write settles, and ``close`` waits for it rather than
            # leaving the spool and the queue on disk for a next start.
            if write.done():
                self._settle()
            else:
                write.add_done_callback(self._write_settled)
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
        self._accepted = len(events) - len(refused)
        if refused:
            await self._set_aside(
                [_entry(item.reason, event=encode_event(item.event)) for item in refused],
                "sink_refused",
                "; ".join(sorted({item.reason for item in refused})),
                ids=[item.event.request.request_id for item in refused],
            )
        return True

    async def _set_aside(
        self, lines: list[bytes], reason: str, why: str, *, ids: list[str] | None = None
    ) -> None:
        """Quarantine what can never be delivered, count it, and say so in the log."""
        try:
            kept = await asyncio.to_thread(self._spool.quarantine, lines)
        except OSError as error:
            log.error("quarantine in %s unwritable: %s", self._spool.directory, error)
            kept = False
        if kept:
            self._metrics.quarantined.labels(reason).inc(len(lines))
        else:
            self._metrics.dropped.labels("quarantine_full").inc(len(lines))
        which = f" (request ids {', '.join(ids[:5])}{'…' if len(ids) > 5 else ''})" if ids else ""
        log.warning(
            "%d event(s)%s %s: %s",
            len(lines),
            which,
            "set aside in the spool's quarantine/" if kept else "dropped, the quarantine is full",
            why[:500],
        )

    def _settle(self) -> None:
        self._busy = False
        self._in_flight = None

    def _write_settled(self, write: asyncio.Future[Any]) -> None:
        self._settle()
        if not write.cancelled():
            write.exception()  # retrieved: the failure was already counted and logged

    async def _to_spool(self, events: list[CapturedEvent], *, front: bool = False) -> None:
        payload = encode_events(events)
        self._spooling += 1
        reason = "spool_full"
        try:
            async with self._spool_lock:
                stored = await asyncio.to_thread(self._spool.append, payload, front=front)
            if self._spool_broken:
                self._spool_broken = False
                log.info("spool %s is writable again", self._spool.directory)
        except OSError as error:
            # A full or failing disk: this batch is lost (and counted), nothing is left
            # behind, and the next batch tries again, so the state mends itself.
            if not self._spool_broken:
                self._spool_broken = True
                log.error(
                    "spool %s unwritable (%s); dropping batches until it is",
                    self._spool.directory,
                    error.strerror or error,
                )
            stored, reason = False, "spool_unwritable"
        finally:
            self._spooling -= 1
        if stored:
            self._metrics.spooled.inc(len(events))
        else:
            self._metrics.dropped.labels(reason).inc(len(events))

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
        """Feed the spool to the sink, oldest batch first, whenever the sink will take it.

        Never ends on an error: an unexpected one is logged and the replayer carries on
        after a pause, so the spool cannot stop draining without a word.
        """
        while not self._closing:
            ready = (
                self._spool.pending
                and not self._busy
                and not self._spooling
                and self._breaker.allows()
            )
            try:
                replayed = bool(ready) and await self.replay_one()
            except Exception:
                log.exception("replaying the spool failed; trying again in 1 s")
                await asyncio.sleep(1.0)
                continue
            if not replayed:
                await asyncio.sleep(0.05)

    async def replay_one(self, timeout: float | None = None) -> bool:
        """Deliver the spool's oldest batches in one write; True when they were accepted.

        Spooled batches are as small as traffic made them; replaying them merged (up to
        ``_REPLAY_FILES`` files, ``_REPLAY_BYTES``) drains an outage's backlog in seconds.
        """
        head = await asyncio.to_thread(self._spool.head, _REPLAY_FILES, _REPLAY_BYTES)
        if not head:
            return False
        events: list[CapturedEvent] = []
        unreadable: list[bytes] = []
        problems: set[str] = set()
        for _, payload in head:
            for line in payload.splitlines():
                if not line.strip():
                    continue
                try:
                    events.append(decode_event(line))
                except EventFormatError as error:
                    unreadable.append(_entry(str(error), line=line.decode("utf-8", "replace")))
                    problems.add(str(error))
        if unreadable:
            # Written by an older or broken version, or damaged on disk: it will never
            # decode, so it must not stay at the head of the spool, blocking the rest.
            await self._set_aside(unreadable, "undecodable", "; ".join(sorted(problems)))
        if events and (self._busy or not await self._send(events, timeout=timeout)):
            if unreadable:  # keep the good events, without the lines already set aside
                await self._rewrite_head(head, events)
            return False
        for name, _ in head:
            await asyncio.to_thread(self._spool.remove, name)
        self._metrics.sent.inc(self._accepted if events else 0)
        self._metrics.replayed.inc(self._accepted if events else 0)
        return True

    async def _rewrite_head(
        self, head: list[tuple[str, bytes]], events: list[CapturedEvent]
    ) -> None:
        """Replace the head's files by one holding only their readable events."""
        async with self._spool_lock:
            await asyncio.to_thread(self._spool.append, encode_events(events), front=True)
            for name, _ in head:
                await asyncio.to_thread(self._spool.remove, name)

    # -- shutdown -----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker and the replayer to return after what they hold."""
        self._closing = True
        self._wake.set()

    async def close(self, deadline: float) -> None:
        """Flush: the write in flight, the spool and the queue go to the sink if it answers
        before ``deadline`` (a ``clock()`` value), else to the spool for the next start."""
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
        if self._write is not None and not self._write.done():
            # A replay cut short by the shutdown: its write may still land, and until it
            # settles the sink is busy. Wait for it (its outcome was counted by _send's
            # callback); should it land, its batch is replayed again below as duplicates
            # the store ignores.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(max(deadline - self._clock(), 0.01)):
                    await asyncio.shield(self._write)
        # The spool next (it is older than the queue), while the sink takes it: the next
        # start may never come to replay it (a deleted pod's emptyDir goes with the pod).
        while self._spool.pending and not self._busy and self._breaker.allows():
            left = deadline - self._clock()
            if left <= 0 or not await self.replay_one(timeout=left):
                break
        while self._queue:
            events = await self._convert(self._take())
            left = deadline - self._clock()
            if left > 0 and self._sink_free() and await self._send(events, timeout=left):
                self._metrics.sent.inc(self._accepted)
            else:
                await self._to_spool(events)
