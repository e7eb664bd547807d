"""Tumbling windows and which of them are due: pure functions of the times passed in.

Windows are aligned to the Unix epoch, so every replica and every run (live or backfill)
cuts time the same way: with a 1-hour window, 12:00-13:00 is always one window. A window is
complete once ``now`` reaches its end. The live runner computes each complete window once,
plus the open window so far (marked partial), and re-computes a complete window when late
events or labels change it, for as long as its end lies within the label horizon; older
windows are final (``monitor backfill`` recomputes history on request).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modeltap.schema import utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True, slots=True)
class Window:
    """The half-open interval ``[start, end)``.

    >>> w = Window(datetime(2026, 1, 1, 12, tzinfo=UTC), datetime(2026, 1, 1, 13, tzinfo=UTC))
    >>> datetime(2026, 1, 1, 12, 30, tzinfo=UTC) in w, w.end in w
    (True, False)
    """

    start: datetime
    end: datetime

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end

    @property
    def size(self) -> timedelta:
        return self.end - self.start

    def __str__(self) -> str:
        return f"{self.start.isoformat()}/{self.end.isoformat()}"


def _check_size(size: timedelta) -> None:
    if size <= timedelta(0):
        raise ValueError(f"a window must be longer than zero, got {size}")


def window_at(moment: datetime, size: timedelta) -> Window:
    """The window that contains ``moment``.

    >>> str(window_at(datetime(2026, 1, 1, 12, 40, tzinfo=UTC), timedelta(hours=1)))
    '2026-01-01T12:00:00+00:00/2026-01-01T13:00:00+00:00'
    """
    _check_size(size)
    elapsed = utc(moment) - EPOCH
    start = EPOCH + (elapsed // size) * size
    return Window(start, start + size)


def due_windows(
    last_done: datetime | None, now: datetime, size: timedelta, horizon: timedelta
) -> list[Window]:
    """Complete windows ending after ``last_done`` (the end of the newest one computed).

    Windows that ended more than ``horizon`` before ``now`` are final and never due, which
    also bounds the catch-up after a first start or a long outage. Oldest first.

    >>> noon = datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    >>> [w.start.hour for w in due_windows(None, noon, timedelta(hours=1), timedelta(hours=3))]
    [9, 10, 11]
    """
    now = utc(now)
    newest = window_at(now, size)
    end = newest.start  # the end of the newest complete window
    floor = now - horizon
    if last_done is not None:
        floor = max(floor, utc(last_done))
    windows: list[Window] = []
    while end > floor:
        windows.append(Window(end - size, end))
        end -= size
    return windows[::-1]


def open_window(now: datetime, size: timedelta) -> Window | None:
    """The window still in progress at ``now``, or None when ``now`` is exactly on a boundary."""
    current = window_at(now, size)
    return None if current.start == utc(now) else current


def reopenable(window: Window, now: datetime, horizon: timedelta) -> bool:
    """Whether a complete window may still change: it ended at most ``horizon`` ago.

    >>> w = window_at(datetime(2026, 1, 1, 12, tzinfo=UTC), timedelta(hours=1))
    >>> reopenable(w, datetime(2026, 1, 8, 13, tzinfo=UTC), timedelta(days=7))
    True
    """
    return window.end <= utc(now) and utc(now) - window.end <= horizon


def windows_containing(
    moments: Iterable[datetime], size: timedelta, now: datetime, horizon: timedelta
) -> list[Window]:
    """The re-openable windows that contain any of ``moments`` (e.g. predictions just labelled)."""
    found = {window_at(moment, size) for moment in moments}
    return sorted(window for window in found if reopenable(window, now, horizon))


def changed_windows(
    recorded: Mapping[Window, tuple[int, int]],
    observed: Mapping[Window, tuple[int, int]],
    now: datetime,
    horizon: timedelta,
) -> list[Window]:
    """Re-openable windows whose event counts differ from those seen when they were computed.

    ``recorded`` and ``observed`` map windows to (requests, prediction rows); a window with
    events now but none recorded changed too (late events into a window computed empty).
    """
    changed = {
        window
        for window in set(recorded) | set(observed)
        if recorded.get(window, (0, 0)) != observed.get(window, (0, 0))
    }
    return sorted(window for window in changed if reopenable(window, now, horizon))
