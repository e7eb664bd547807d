"""A backfill's labels file read column by column, for files the record validator would pass.

``monitor labels import`` validates a file record by record (``modeltap.labels``), which is
right for its error messages and costs about 40 µs a label: 72 s for the 1.8M labels of a
month at 100k predictions a day, more than the whole backfill's budget. Most label files
are plain: a request id, perhaps a row index, the value and an ISO time with its offset.
Those are read here by pyarrow's CSV reader and checked a column at a time with its
compute functions (1.5 s for the same file, keys included), and the result is exactly what
the record path gives: ``tests/detectors/test_label_columns.py`` compares both on generated
files. Whatever this path does not recognise as plainly valid (another column, an empty id
or value, a number where an id should be, a time without an offset, quotes or lone carriage
returns, which CSV readers may split differently) makes it answer None, and the record
path reads the file and names any problem as ``labels import`` would.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detectors.label_table import LabelTable
from modeltap.labelfiles import cell
from modeltap.labels import MAX_ROW
from modeltap.schema import EARLIEST, LATEST, MAX_ID, bounded

# Cells that int() or float() might read, or a boolean: checked one by one with ``cell``.
# Anything else is text for certain. (RE2 syntax, as pyarrow's regex functions take it.)
_MAYBE_NUMBER = (
    r"(?i)^[\p{Nd}\p{Z}\p{Cc}+\-._e]*$"
    r"|^[\p{Z}\p{Cc}]*[+-]?(inf|infinity|nan|true|false)[\p{Z}\p{Cc}]*$"
)
_UNSTORABLE = r"[\x00-\x1f\x7f]"  # as modeltap.schema's (no lone surrogates in UTF-8)
_INDEX = r"^[0-9]{1,10}$"
# ISO 8601 with seconds and an explicit, valid offset: what pydantic reads as this instant.
_TIME = (
    r"^\d{4}-[01]\d-[0-3]\dT(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)


def read(path: Path, label_field: str, kind: str, received_at: datetime) -> LabelTable | None:
    """The labels of a plain CSV or TSV file as ``read_labels`` gives them, or None: read it
    record by record instead. A label without a time is dated ``received_at``."""
    import pyarrow as pa  # noqa: PLC0415 - the record path needs neither
    import pyarrow.compute as pc  # noqa: PLC0415

    if kind not in ("csv", "tsv"):
        return None
    table = _table(path, "\t" if kind == "tsv" else ",", label_field)
    if table is None or table.num_rows == 0:
        return None
    columns = {name: table.column(name).combine_chunks() for name in table.column_names}
    ids = _plain_ids(columns["request_id"])
    rows = _row_indices(columns["row_index"]) if "row_index" in columns else 0
    received = received_at.timestamp()
    if "time" in columns:
        arrived = _arrivals(columns["time"], received)
    else:
        arrived = np.full(table.num_rows, received)
    if ids is None or rows is None or arrived is None:
        return None
    # The live label key, "r:<request id>:<row>", built on Arrow's buffers: as Python strings
    # it took 1.3 s for 1.8M labels.
    row_text = pa.scalar("0") if isinstance(rows, int) else pa.array(rows).cast(pa.string())
    keys = pc.binary_join_element_wise("r", ids, row_text, ":")
    codes, distinct = _label_text(columns[label_field])
    return LabelTable(keys, codes, distinct, arrived)


def _table(path: Path, delimiter: str, label_field: str) -> Any:
    """Every cell as text, or None when the file is not plainly shaped."""
    import pyarrow as pa  # noqa: PLC0415 - the record path needs neither
    import pyarrow.csv as pcsv  # noqa: PLC0415

    data = path.read_bytes()
    if b'"' in data or data.count(b"\r") != data.count(b"\r\n"):
        return None
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle, delimiter=delimiter), [])
    names = set(header)
    if len(names) != len(header) or not (
        {"request_id", label_field} <= names <= {"request_id", "row_index", label_field, "time"}
    ):
        return None
    try:
        table = pcsv.read_csv(
            pa.py_buffer(data),
            read_options=pcsv.ReadOptions(skip_rows=1, column_names=header),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char=False),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None  # a short or long row, or bytes that are not UTF-8
    import pyarrow.compute as pc  # noqa: PLC0415

    for name in ("request_id", label_field):
        if pc.any(pc.equal(table.column(name), "")).as_py():
            return None  # no id or no value: the record path says which record
    return table


def _plain_ids(ids: Any) -> Any:
    """Request ids as the record path stores them, or None if any might not be text."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    doubtful = pc.match_substring_regex(ids, _MAYBE_NUMBER)
    if pc.any(doubtful).as_py() and any(
        not isinstance(cell(value), str) for value in pc.filter(ids, doubtful).to_pylist()
    ):
        return None
    long = pc.greater(pc.utf8_length(ids), MAX_ID)
    unstorable = pc.or_(long, pc.match_substring_regex(ids, _UNSTORABLE))
    if not pc.any(unstorable).as_py():
        return ids
    bad = unstorable.to_numpy(zero_copy_only=False)
    text = ids.to_numpy(zero_copy_only=False)
    text[bad] = [bounded(value, MAX_ID) for value in text[bad]]
    return pa.array(text, type=pa.string())


def _row_indices(rows: Any) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    import pyarrow.compute as pc  # noqa: PLC0415

    given = pc.not_equal(rows, "")
    if not pc.all(pc.or_(pc.invert(given), pc.match_substring_regex(rows, _INDEX))).as_py():
        return None
    numbers = pc.if_else(given, rows, "0").cast("int64").to_numpy()
    return None if bool((numbers > MAX_ROW).any()) else numbers


def _arrivals(times: Any, received: float) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    """Epoch seconds of each time, as ``datetime.timestamp()`` gives them (``received``
    where the cell is empty); None if any time is not plain ISO or not storable."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    given = pc.not_equal(times, "").to_numpy(zero_copy_only=False)
    present = pc.filter(times, given)
    if not pc.all(pc.match_substring_regex(present, _TIME)).as_py():
        return None  # a time that is not plain ISO with an offset
    try:
        # What the pattern lets through, Arrow's ISO 8601 parser reads as pydantic does,
        # to the microsecond, and it refuses a day the month does not have (Feb 30) as
        # the validator does. (strptime rolled such a day over, and checking each field
        # against the text, then the offset by hand, took 2.7 s for 1.8M labels.)
        moments = pc.cast(present, pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        return None
    micros = moments.cast(pa.int64()).to_numpy()
    low, high = (int(moment.timestamp()) * 1_000_000 for moment in (EARLIEST, LATEST))
    if bool(((micros < low) | (micros >= high)).any()):
        return None
    arrived: np.ndarray[Any, np.dtype[np.float64]] = np.full(len(given), received)
    # Whole microseconds are exact in a double, so this is Python's correctly rounded
    # microseconds / 10**6, the same float ``timestamp()`` returns.
    arrived[given] = micros.astype(np.float64) / 1e6
    return arrived


def _label_text(values: Any) -> tuple[np.ndarray[Any, np.dtype[np.int32]], Any]:
    """Each value as the record path types it and the detectors read it (JSON-style text):
    a code per label into the distinct texts."""
    from detectors.rows import coerce_categorical  # noqa: PLC0415 - keeps this module small

    encoded = values.dictionary_encode()
    typed = pd.Series([cell(text) for text in encoded.dictionary.to_pylist()], dtype=object)
    codes: np.ndarray[Any, np.dtype[np.int32]] = encoded.indices.to_numpy().astype(np.int32)
    return codes, coerce_categorical(typed)[0]
