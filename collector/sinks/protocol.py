"""The sink seam: what every sink does, and what it answers about events it refuses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from modeltap.events import CapturedEvent


@dataclass(frozen=True, slots=True)
class Refused:
    """An event the sink will never take (its data, not the sink, is at fault), and why."""

    event: CapturedEvent
    reason: str


class Sink(Protocol):
    """Accepts batches of events; raises on failure so the caller can spool them.

    A write stores every event it can and returns the ones refused for good (say, a value
    the database cannot hold): those are set aside by the caller, never retried, so one
    bad event cannot hold back the rest of its batch or the batches behind it.
    """

    name: str

    async def write(self, events: Sequence[CapturedEvent]) -> Sequence[Refused]: ...

    async def close(self) -> None: ...
