"""In-memory twin of the sink seam, for pipeline unit tests (the real sinks have their own)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from collector.capture import Exchange
from collector.sinks import Refused
from modeltap.events import CapturedEvent

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


class MemorySink:
    """Keeps what it is sent; can be told to fail or to hang until released."""

    name = "memory"

    def __init__(self) -> None:
        self.events: list[CapturedEvent] = []
        self.writes = 0
        self.failing = False
        self.poison: set[str] = set()  # request ids it refuses for good
        self.stalled = asyncio.Event()
        self.stalled.set()

    async def write(self, events: Sequence[CapturedEvent]) -> Sequence[Refused]:
        self.writes += 1
        await self.stalled.wait()
        if self.failing:
            raise ConnectionError("sink is down")
        refused = [Refused(e, "refused") for e in events if e.request.request_id in self.poison]
        self.events.extend(e for e in events if e.request.request_id not in self.poison)
        return refused

    async def close(self) -> None:
        return None

    @property
    def request_ids(self) -> list[str]:
        return [event.request.request_id for event in self.events]


def exchange(
    n: int,
    *,
    body: bytes | None = b'{"a": 1}',
    answer: bytes | None = b"[1]",
    model: str = "churn",
    status: int = 200,
) -> Exchange:
    return Exchange(
        event_id=f"e{n}",
        request_id=f"r{n}",
        model=model,
        version="v1",
        started=T0,
        latency_ms=1.0,
        status=status,
        request_body=body,
        response_body=answer,
    )
