"""Reading a user's table (CSV, Parquet or JSON lines) with errors that say what to fix."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from modeltap.errors import InputError
from modeltap.extras import require

SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}


def read_table(path: Path) -> pd.DataFrame:
    """The rows of ``path``, by its suffix; a missing or malformed file is an InputError.

    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = file.write_text("a,b\\n1,x\\n")
    >>> read_table(file).to_dict("records")
    [{'a': 1, 'b': 'x'}]
    """
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: cannot tell the format from the suffix {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(sorted(SUFFIXES))}"
        )
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    try:
        if kind == "parquet":
            require("pyarrow", feature="reading Parquet files", extra="parquet")
            return pd.read_parquet(path)
        if kind in ("jsonl", "json"):
            return pd.read_json(path, lines=kind == "jsonl", dtype=False)
        return pd.read_csv(path, sep="\t" if kind == "tsv" else ",", low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path} is not readable as {kind}: {first}") from None


def parse_moment(text: str, option: str) -> datetime:
    """An ISO 8601 timestamp with a timezone (``2026-11-25T12:00:00Z``); naive ones are refused.

    >>> parse_moment("2026-11-25T12:00:00Z", "--start").isoformat()
    '2026-11-25T12:00:00+00:00'
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{option}: {text!r} is not an ISO 8601 time such as 2026-11-25T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise InputError(
            f"{option}: {text!r} has no timezone; add Z (UTC) or an offset like +01:00"
        )
    return moment
