"""The capture pipeline with an in-memory sink: never blocking, never losing silently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collector.capture import Capturer
from collector.metrics import SidecarMetrics
from collector.pipeline import Pipeline, PipelineSettings
from collector.spool import Spool
from tests.collector.fakes import MemorySink, exchange


class Rig:
    def __init__(
        self,
        tmp_path: Path,
        *,
        queue_size: int = 1000,
        spool_bytes: int = 10**7,
        batch_size: int = 10,
        sink_timeout: float = 0.5,
    ) -> None:
        self.registry = CollectorRegistry()
        self.metrics = SidecarMetrics(self.registry)
        self.sink = MemorySink()
        self.spool = Spool(tmp_path / "spool", spool_bytes)
        self.pipeline = Pipeline(
            Capturer({}),
            self.sink,
            self.spool,
            self.metrics,
            PipelineSettings(
                queue_size=queue_size,
                queue_max_bytes=10**8,
                batch_size=batch_size,
                flush_interval=0.02,
                sink_timeout=sink_timeout,
                retry_min=0.05,
                retry_max=0.1,
            ),
        )

    def value(self, name: str) -> float:
        return self.registry.get_sample_value(name) or 0.0

    async def until(self, condition: object, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while not condition():  # type: ignore[operator]
            assert time.monotonic() < deadline, "condition not reached in time"
            await asyncio.sleep(0.01)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made = Rig(tmp_path)
    tasks = [asyncio.create_task(made.pipeline.run()), asyncio.create_task(made.pipeline.replay())]
    yield made
    made.pipeline.stop()
    await asyncio.gather(*tasks)


async def test_healthy_sink_gets_everything(rig: Rig) -> None:
    for n in range(95):
        rig.pipeline.offer(exchange(n))
    await rig.until(lambda: rig.value("modeltap_capture_sent_events_total") == 95)
    assert rig.sink.request_ids == [f"r{n}" for n in range(95)]
    assert rig.spool.pending == 0


async def test_a_failing_sink_spools_then_replays_in_order(rig: Rig) -> None:
    rig.sink.failing = True
    for n in range(50):
        rig.pipeline.offer(exchange(n))
    await rig.until(lambda: rig.value("modeltap_capture_spooled_events_total") == 50)
    assert rig.value("modeltap_capture_sink_up") == 0
    assert rig.sink.events == []
    for n in range(50, 70):  # traffic continues while the sink is down
        rig.pipeline.offer(exchange(n))
    await rig.until(lambda: rig.value("modeltap_capture_spooled_events_total") == 70)
    rig.sink.failing = False
    await rig.until(lambda: rig.value("modeltap_capture_replayed_events_total") == 70)
    assert rig.sink.request_ids == [f"r{n}" for n in range(70)]
    assert rig.value("modeltap_capture_sink_up") == 1
    assert (rig.spool.pending, rig.value("modeltap_capture_dropped_events_total")) == (0, 0)


async def test_a_stalled_sink_never_backs_up_the_queue(rig: Rig) -> None:
    rig.sink.stalled.clear()  # every write hangs
    for n in range(300):
        rig.pipeline.offer(exchange(n))
        await asyncio.sleep(0.001)
    # One batch is stuck in the sink; everything else went to disk, not to the queue.
    await rig.until(lambda: rig.pipeline.queued == 0)
    assert rig.value("modeltap_capture_spooled_events_total") >= 280
    assert rig.value("modeltap_capture_dropped_events_total") == 0
    rig.sink.stalled.set()
    await rig.until(lambda: len(set(rig.sink.request_ids)) == 300)
    assert sorted(set(rig.sink.request_ids)) == sorted(f"r{n}" for n in range(300))


async def test_offer_never_waits_and_counts_what_it_must_drop(tmp_path: Path) -> None:
    rig = Rig(tmp_path, queue_size=5)  # no worker running: the queue just fills
    started = time.perf_counter()
    for n in range(8):
        rig.pipeline.offer(exchange(n))
    assert time.perf_counter() - started < 0.5  # sanity: nothing in offer() blocks
    assert rig.pipeline.queued == 5
    assert rig.value("modeltap_capture_dropped_events_total") == 3


async def test_events_drop_only_when_queue_and_spool_are_both_full(tmp_path: Path) -> None:
    rig = Rig(tmp_path, spool_bytes=2000, batch_size=5)
    rig.sink.failing = True
    task = asyncio.create_task(rig.pipeline.run())
    for n in range(100):
        rig.pipeline.offer(exchange(n))
    await rig.until(lambda: rig.pipeline.queued == 0)
    rig.pipeline.stop()
    await task
    spooled = rig.value("modeltap_capture_spooled_events_total")
    dropped = rig.value("modeltap_capture_dropped_events_total")
    assert spooled + dropped == 100
    assert 0 < spooled < 100
    assert rig.spool.size <= 2000


async def test_unparsed_bodies_are_counted_and_still_stored(rig: Rig) -> None:
    rig.pipeline.offer(exchange(1, body=b"{broken"))
    await rig.until(lambda: len(rig.sink.events) == 1)
    note = rig.sink.events[0].request.capture_note
    assert note is not None
    assert note.startswith("unparsed: request body is not JSON")
    assert rig.value("modeltap_capture_unparsed_events_total") == 1


async def test_close_flushes_the_queue_to_the_sink(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    for n in range(25):
        rig.pipeline.offer(exchange(n))
    await rig.pipeline.close(deadline=time.monotonic() + 2)
    assert len(rig.sink.events) == 25


async def test_close_with_a_dead_sink_leaves_everything_on_disk(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.sink.stalled.clear()
    for n in range(25):
        rig.pipeline.offer(exchange(n))
    started = time.monotonic()
    await rig.pipeline.close(deadline=time.monotonic() + 1)
    assert time.monotonic() - started < 3
    assert rig.sink.events == []
    assert rig.value("modeltap_capture_spooled_events_total") == 25
    # The next process replays it.
    again = Rig(tmp_path)
    assert again.spool.pending >= 1
    while await again.pipeline.replay_one():
        pass
    assert sorted(again.sink.request_ids) == sorted(f"r{n}" for n in range(25))
