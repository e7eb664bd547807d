"""The column-wise labels reader gives exactly what the record-by-record validator gives, or
declines; it never accepts a file the validator refuses."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors import history, label_columns
from detectors.label_table import LabelTable
from modeltap.errors import InputError

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)

IDS = st.one_of(
    st.from_regex(r"[a-z][a-z0-9\-]{0,12}", fullmatch=True),
    st.sampled_from(
        ["123", "1e5", "007", " 12 ", "nan", "Infinity", "true", "1_000", "١٢", "12-3"]
    ),
    st.text(min_size=1, max_size=8).filter(lambda text: "\r" not in text and "\n" not in text),
    st.just("x" * 300),
)
ROWS = st.sampled_from(["", "0", "3", "007", "2147483647", "2147483648", "1.0", " 2", "-1", "x"])
VALUES = st.sampled_from(["0", "1", "true", "FALSE", "1.5", "-2", "abc", "nan", "inf", "", "1e3"])
TIMES = st.one_of(
    st.sampled_from(
        [
            "",
            "2026-10-01T02:00:00+00:00",
            "2026-10-01T02:00:00.5Z",
            "2026-10-01T02:00:00.123456-05:30",
            "2026-10-01T23:59:59.000001+14:00",
            "2026-10-01T02:00:00",  # no offset: the validator refuses it
            "2026-02-30T02:00:00Z",  # no such day
            "1969-12-31T23:59:59Z",  # before 1970
            "2026-10-01 02:00:00Z",
            "1700000000",
        ]
    ),
    st.datetimes(
        # hypothesis takes naive bounds and puts the zone on afterwards
        min_value=datetime(1970, 1, 2),  # noqa: DTZ001
        max_value=datetime(2200, 1, 1),  # noqa: DTZ001
        timezones=st.one_of(
            st.just(UTC),
            # Offsets either side, to the minute, as Arrow's parser must apply them.
            st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
                lambda minutes: timezone(timedelta(minutes=minutes))
            ),
        ),
    ).map(lambda moment: moment.isoformat()),
)


def record_path(path: Path, field: str) -> LabelTable | InputError:
    """What ``read_labels`` gives through the record validator alone."""
    original = label_columns.read
    label_columns.read = lambda *args: None
    try:
        return history.read_labels(path, field, NOW)
    except InputError as error:
        return error
    finally:
        label_columns.read = original


def write(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)


def assert_same(fast_table: LabelTable, slow_table: LabelTable) -> None:
    fast, slow = fast_table.frame(), slow_table.frame()
    assert fast.index.tolist() == slow.index.tolist()
    assert fast["label"].tolist() == slow["label"].tolist()
    assert np.array_equal(
        fast["label_received_at"].to_numpy(), slow["label_received_at"].to_numpy()
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(IDS, ROWS, VALUES, TIMES), min_size=1, max_size=12),
    st.sampled_from([("request_id", "row_index", "label", "time"), ("request_id", "label"),
                     ("request_id", "label", "time"),
                     ("time", "label", "request_id", "row_index")]),
)  # fmt: skip
def test_either_the_same_labels_or_the_record_path(
    tmp_path: Path, records: list[tuple[str, str, str, str]], header: tuple[str, ...]
) -> None:
    path = tmp_path / "labels.csv"
    picked = {"request_id": 0, "row_index": 1, "label": 2, "time": 3}
    write(path, list(header), [[record[picked[name]] for name in header] for record in records])
    fast = label_columns.read(path, "label", "csv", NOW)
    slow = record_path(path, "label")
    if fast is None:
        return  # the record path reads it, with its errors
    assert isinstance(slow, LabelTable), f"accepted what the validator refuses: {slow}"
    assert_same(fast, slow)


def plain_rows(count: int) -> list[list[str]]:
    return [
        [f"req-{n % 40}", str(n % 3), str(n % 2), f"2026-10-01T02:{n % 60:02d}:00.{n:06d}+00:00"]
        for n in range(count)
    ]


def test_a_plain_file_is_read_by_columns_and_equals_the_records(tmp_path: Path) -> None:
    # Repeated keys: the later label wins, on both paths.
    path = tmp_path / "truth.csv"
    write(path, ["request_id", "row_index", "label", "time"], plain_rows(500))
    fast = label_columns.read(path, "label", "csv", NOW)
    assert fast is not None
    slow = record_path(path, "label")
    assert isinstance(slow, LabelTable)
    assert_same(fast, slow)
    assert len(fast) == 120


def test_a_tsv_with_another_label_field_and_no_times(tmp_path: Path) -> None:
    path = tmp_path / "truth.tsv"
    write(path, ["request_id", "churned"], [["a", "1"], ["b", "0"], ["c", "yes"]], "\t")
    fast = label_columns.read(path, "churned", "tsv", NOW)
    assert fast is not None
    assert fast.frame()["label"].tolist() == ["1", "0", "yes"]
    assert set(fast.frame()["label_received_at"]) == {NOW.timestamp()}
    slow = record_path(path, "churned")
    assert isinstance(slow, LabelTable)
    assert_same(fast, slow)


@pytest.mark.parametrize(
    ("header", "row"),
    [
        (["request_id", "label", "model"], ["a", "1", "churn"]),  # a column it does not read
        (["request_id", "label"], ["", "1"]),  # no id
        (["request_id", "label"], ["123", "1"]),  # a number where the id is text
        (["request_id", "label", "time"], ["a", "1", "2026-10-01T02:00:00"]),  # no offset
        (["request_id", "label"], ['a"b', "1"]),  # quotes: CSV readers may differ
    ],
)
def test_what_it_does_not_read_goes_to_the_record_path(
    tmp_path: Path, header: list[str], row: list[str]
) -> None:
    path = tmp_path / "labels.csv"
    write(path, header, [row])
    assert label_columns.read(path, "label", "csv", NOW) is None


def test_read_labels_gives_the_record_paths_error_for_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    write(path, ["request_id", "label", "time"], [["a", "1", "2026-10-01T02:00:00"]])
    with pytest.raises(InputError, match="timezone"):
        history.read_labels(path, "label", NOW)
