"""Label files for `monitor labels import`, in any format of ``modeltap.files``, read in chunks.

Each record is what POST /v1/labels takes: ``request_id`` (+ ``row_index``) or
``instance_id``, the true value (``label`` or the model's label_field), optional ``time``
and ``model``. CSV cells are text, so numbers and booleans in them are read as such.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modeltap.errors import InputError
from modeltap.files import file_format

CHUNK = 5000


def read_chunks(path: Path) -> Iterator[list[tuple[int, Any]]]:
    """Chunks of (record number, record); a record that cannot be read is a string reason."""
    kind = file_format(path)
    reader = {
        "csv": _csv,
        "tsv": _tsv,
        "jsonl": _jsonl,
        "json": _json_array,
        "parquet": _parquet,
    }[kind]
    chunk: list[tuple[int, Any]] = []
    try:
        for number, record in reader(path):
            chunk.append((number, record))
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as error:
        # Parquet's reader raises ArrowInvalid (a ValueError) for a file that is not Parquet,
        # such as a CSV under a .parquet name; the name alone decided the format.
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path} is not readable as {kind}: {first}") from None
    if chunk:
        yield chunk


def _csv(path: Path, delimiter: str = ",") -> Iterator[tuple[int, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = csv.DictReader(handle, delimiter=delimiter)
        for number, row in enumerate(rows, start=2):  # line 1: the header
            yield (
                number,
                {
                    key: cell(value)
                    for key, value in row.items()
                    if key is not None and value not in ("", None)
                },
            )


def _tsv(path: Path) -> Iterator[tuple[int, Any]]:
    return _csv(path, delimiter="\t")


def cell(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        return value if not (isinstance(value, float) and not math.isfinite(value)) else text
    return text


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                yield number, f"not JSON ({error.msg} at column {error.colno})"


def _json_array(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, RecursionError) as error:
        raise InputError(f"{path} is not a JSON array of labels: {error}") from None
    yield from enumerate(records if isinstance(records, list) else [records], start=1)


def _parquet(path: Path) -> Iterator[tuple[int, Any]]:
    from pyarrow import parquet  # noqa: PLC0415 - the sidecar imports this package

    table = parquet.ParquetFile(path)
    number = 0
    for batch in table.iter_batches(batch_size=CHUNK):
        for record in batch.to_pylist():
            number += 1
            yield number, {key: _plain(value) for key, value in record.items() if value is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        # Parquet timestamps without a zone are instants written as UTC.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
