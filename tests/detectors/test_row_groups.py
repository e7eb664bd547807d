"""A window read through the row-group index holds exactly the rows a full scan would, and
opens only the row groups whose times can fall in it; and the column conversions a file's
window goes through give what their value-by-value versions give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.history import _bounded, _bounded_ids, _epoch
from detectors.row_groups import RowGroupIndex
from detectors.rows import _category, coerce_categorical

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def history(path: Path, *, zoned: bool, statistics: bool = True, shuffled: bool = False) -> Any:
    """120 rows a minute apart (plus a nanosecond each, so bounds are exact), 10 per group."""
    stamps = pd.date_range(T0, periods=120, freq="min") + pd.to_timedelta(np.arange(120), unit="ns")
    if not zoned:
        stamps = stamps.tz_localize(None)
    order = np.random.default_rng(3).permutation(120) if shuffled else np.arange(120)
    table = pa.table({"ts": pa.array(stamps[order]), "n": pa.array(order)})
    pq.write_table(table, path, row_group_size=10, write_statistics=statistics)
    return ds.dataset(path, format="parquet")


def window_filter(dataset: Any, start: datetime, end: datetime) -> Any:
    kind = dataset.schema.field("ts").type
    low = pa.scalar(start if kind.tz else start.replace(tzinfo=None), type=kind)
    high = pa.scalar(end if kind.tz else end.replace(tzinfo=None), type=kind)
    return (ds.field("ts") >= low) & (ds.field("ts") < high)


WINDOWS = [
    (T0, T0 + timedelta(minutes=10)),  # exactly the first group
    # From one row's time to the next's: a nanosecond either way moves a row across.
    (T0 + timedelta(minutes=9, microseconds=0), T0 + timedelta(minutes=25)),
    (T0 + timedelta(minutes=59), T0 + timedelta(minutes=61)),
    (T0 - timedelta(hours=1), T0),  # before every row
    (T0 + timedelta(hours=3), T0 + timedelta(hours=4)),  # after every row
    (T0 - timedelta(days=1), T0 + timedelta(days=1)),  # all of it
]


@pytest.mark.parametrize("zoned", [True, False])
@pytest.mark.parametrize("shuffled", [False, True])
def test_a_window_holds_the_rows_a_full_scan_holds(
    tmp_path: Path, zoned: bool, shuffled: bool
) -> None:
    dataset = history(tmp_path / "h.parquet", zoned=zoned, shuffled=shuffled)
    index = RowGroupIndex(dataset, "ts")
    for start, end in WINDOWS:
        expected = dataset.to_table(filter=window_filter(dataset, start, end))
        got = index.covering(start, end).to_table(filter=window_filter(dataset, start, end))
        assert sorted(got.column("n").to_pylist()) == sorted(expected.column("n").to_pylist())


def test_only_the_row_groups_a_window_can_touch_are_opened(tmp_path: Path) -> None:
    index = RowGroupIndex(history(tmp_path / "h.parquet", zoned=True), "ts")

    def groups(start: datetime, end: datetime) -> int:
        return len(list(index.covering(start, end).get_fragments()))

    assert groups(T0, T0 + timedelta(minutes=10)) == 1
    # Minute 10's row is 10 ns past the minute: a window ending at the minute leaves it out.
    assert groups(T0, T0 + timedelta(minutes=10, microseconds=1)) == 2
    # The first group's last row is at minute 9 and 9 ns: in a window from minute 9, not in
    # one from a microsecond later.
    assert groups(T0 + timedelta(minutes=9), T0 + timedelta(minutes=9, seconds=1)) == 1
    assert groups(T0 + timedelta(minutes=9, microseconds=1), T0 + timedelta(minutes=10)) == 0
    assert groups(T0 - timedelta(hours=1), T0) == 0
    assert groups(T0, T0 + timedelta(hours=2)) == 12


def test_row_groups_without_statistics_are_read_for_every_window(tmp_path: Path) -> None:
    dataset = history(tmp_path / "h.parquet", zoned=True, statistics=False)
    index = RowGroupIndex(dataset, "ts")
    start, end = T0 + timedelta(minutes=30), T0 + timedelta(minutes=40)
    assert len(list(index.covering(start, end).get_fragments())) == 12
    got = index.covering(start, end).to_table(filter=window_filter(dataset, start, end))
    assert sorted(got.column("n").to_pylist()) == list(range(30, 40))


def test_parquet_times_become_the_same_seconds_as_parsed_text() -> None:
    moments = ["2026-03-01T00:00:00.123456789+00:00", "2026-03-01T05:30:00+02:00", None]
    zoned = pd.Series(pd.to_datetime(pd.Series(moments), utc=True, format="ISO8601"))
    naive = zoned.dt.tz_localize(None)
    text = pd.Series(moments, dtype=object)
    for values in (zoned, naive, zoned.astype("datetime64[ms, UTC]")):
        fast, slow = _epoch(values), _epoch(values.map(_iso))
        assert np.array_equal(fast, slow, equal_nan=True)
    assert np.array_equal(_epoch(zoned), _epoch(text), equal_nan=True)


def _iso(value: Any) -> Any:
    return None if pd.isna(value) else value.isoformat()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30), st.booleans())
def test_integer_and_boolean_classes_read_as_their_values_one_by_one(
    numbers: list[int], booleans: bool
) -> None:
    values = pd.Series([n % 2 == 0 for n in numbers] if booleans else numbers)
    if not booleans:
        values = values.astype(np.int64)
    text, violations = coerce_categorical(values)
    assert text.tolist() == [_category(value) for value in values.tolist()]
    assert violations == 0


def test_ids_are_bounded_as_one_by_one() -> None:
    ids = pd.Series(["plain", "x" * 300, "tab\there", "ünïcode", "", "a\x00b"], dtype=object)
    assert _bounded_ids(ids).tolist() == [_bounded(value) for value in ids]
    plain = pd.Series(["a", "b"], dtype=object)
    assert _bounded_ids(plain).tolist() == ["a", "b"]
