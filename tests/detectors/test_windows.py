"""Windows, due windows and label horizons: tables of datetimes, no clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.windows import (
    Window,
    changed_windows,
    due_windows,
    open_window,
    reopenable,
    window_at,
    windows_containing,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def w(start: str, end: str) -> Window:
    return Window(at(start), at(end))


@pytest.mark.parametrize(
    ("moment", "size", "window"),
    [
        ("2026-11-25 12:00", HOUR, w("2026-11-25 12:00", "2026-11-25 13:00")),
        ("2026-11-25 12:59:59.999999", HOUR, w("2026-11-25 12:00", "2026-11-25 13:00")),
        ("2026-11-25 13:00", HOUR, w("2026-11-25 13:00", "2026-11-25 14:00")),
        ("2026-11-25 12:07", timedelta(minutes=5), w("2026-11-25 12:05", "2026-11-25 12:10")),
        ("2026-11-25 23:30", DAY, w("2026-11-25 00:00", "2026-11-26 00:00")),
        ("1969-12-31 23:30", HOUR, w("1969-12-31 23:00", "1970-01-01 00:00")),
    ],
)
def test_window_at(moment: str, size: timedelta, window: Window) -> None:
    assert window_at(at(moment), size) == window


def test_other_timezones_land_in_the_same_utc_window() -> None:
    paris = datetime.fromisoformat("2026-11-25T13:30:00+01:00")
    assert window_at(paris, HOUR) == w("2026-11-25 12:00", "2026-11-25 13:00")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        window_at(datetime(2026, 11, 25, 12), HOUR)  # noqa: DTZ001


@pytest.mark.parametrize(
    ("last_done", "now", "horizon", "due"),
    [
        # First start: every complete window within the horizon, oldest first.
        (None, "2026-11-25 12:05", timedelta(hours=3), ["09:00", "10:00", "11:00"]),
        # Nothing new completed since the last run.
        ("2026-11-25 12:00", "2026-11-25 12:55", DAY, []),
        # Exactly at a boundary the window that just ended is due.
        ("2026-11-25 12:00", "2026-11-25 13:00", DAY, ["12:00"]),
        # After an outage: everything missed, bounded by the horizon.
        ("2026-11-25 06:00", "2026-11-25 10:30", DAY, ["06:00", "07:00", "08:00", "09:00"]),
        ("2026-11-20 00:00", "2026-11-25 03:10", timedelta(hours=2), ["01:00", "02:00"]),
        # A clock that went backwards makes nothing due.
        ("2026-11-25 12:00", "2026-11-25 11:00", DAY, []),
    ],
)
def test_due_windows(last_done: str | None, now: str, horizon: timedelta, due: list[str]) -> None:
    done = at(last_done) if last_done else None
    got = due_windows(done, at(now), HOUR, horizon)
    assert [window.start.strftime("%H:%M") for window in got] == due
    assert all(window.size == HOUR for window in got)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.integers(1, 72),
    st.integers(0, 400),
)
def test_due_windows_are_contiguous_complete_and_new(
    now: datetime, hours: int, behind: int
) -> None:
    last_done = window_at(now, HOUR).start - behind * HOUR
    due = due_windows(last_done, now, HOUR, hours * HOUR)
    assert all(window.end <= now for window in due)
    assert all(window.start >= last_done for window in due)
    assert all(a.end == b.start for a, b in itertools.pairwise(due))
    assert len(due) == min(behind, hours)
    if due:
        assert due[-1].end == window_at(now, HOUR).start


@pytest.mark.parametrize(
    ("now", "window"),
    [
        ("2026-11-25 12:20", w("2026-11-25 12:00", "2026-11-25 13:00")),
        ("2026-11-25 12:00", None),
    ],
)
def test_open_window(now: str, window: Window | None) -> None:
    assert open_window(at(now), HOUR) == window


@pytest.mark.parametrize(
    ("window_start", "now", "horizon", "expected"),
    [
        ("2026-11-18 12:00", "2026-11-25 13:00", timedelta(days=7), True),  # ended 7 days ago
        ("2026-11-18 11:00", "2026-11-25 13:00", timedelta(days=7), False),  # 7 days and 1 h
        ("2026-11-25 12:00", "2026-11-25 12:30", timedelta(days=7), False),  # still open
        ("2026-11-25 12:00", "2026-11-25 13:00", timedelta(0), True),  # just closed
    ],
)
def test_label_horizon(window_start: str, now: str, horizon: timedelta, expected: bool) -> None:
    window = window_at(at(window_start), HOUR)
    assert reopenable(window, at(now), horizon) is expected


def test_labels_reopen_the_windows_of_their_predictions_within_the_horizon() -> None:
    predicted = [
        at("2026-11-25 09:15"),
        at("2026-11-25 09:45"),
        at("2026-11-24 03:00"),
        at("2026-11-25 12:10"),
    ]
    got = windows_containing(predicted, HOUR, at("2026-11-25 12:30"), timedelta(hours=6))
    # 09:00 twice counts once; 03:00 yesterday is past the horizon; 12:00 is still open.
    assert got == [w("2026-11-25 09:00", "2026-11-25 10:00")]


def test_changed_event_counts_reopen_windows() -> None:
    nine, ten, eleven = (window_at(at(f"2026-11-25 {h}:00"), HOUR) for h in ("09", "10", "11"))
    recorded = {nine: (100, 150), ten: (80, 80), eleven: (0, 0)}
    observed = {nine: (100, 150), ten: (81, 82), eleven: (3, 3)}
    assert changed_windows(recorded, observed, at("2026-11-25 12:00"), DAY) == [ten, eleven]
    assert changed_windows(recorded, observed, at("2026-11-28 12:00"), DAY) == []
