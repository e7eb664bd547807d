from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modeltap.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250ms", timedelta(milliseconds=250)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1.5h", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
        (45, timedelta(seconds=45)),
        (0.5, timedelta(milliseconds=500)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["5 minutes", "m", "", "-5m", True, None, [1]])
def test_bad_durations_say_what_is_allowed(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a duration such as"):
        parse_duration(bad)


@given(st.integers(min_value=1, max_value=10**9))
def test_formatted_durations_parse_back(millis: int) -> None:
    value = timedelta(milliseconds=millis)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512", 512), ("1KiB", 1024), ("10MB", 10_000_000), ("1.5GiB", 3 * 2**29), (7, 7)],
)
def test_sizes(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["1 TB", "MiB", "-1", False, 1.5])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(bad)
