"""Reading a user's files (CSV, TSV, Parquet, JSON lines or a JSON array) with errors that
say what to fix: one table of suffixes for every command that reads them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from modeltap.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

Format = Literal["csv", "tsv", "parquet", "jsonl", "json"]

# The one table of file names modeltap reads (reference files, `monitor check`, label
# imports, backfill sources). ``.json`` is either a JSON array of records or JSON lines:
# ``file_format`` looks at the first character to tell which.
SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}


def file_format(path: Path) -> Format:
    """The format of ``path`` by its suffix; InputError naming the accepted ones if unknown,
    or if the file is not there.

    >>> file_format(Path("truth.tsv"))
    Traceback (most recent call last):
    ...
    modeltap.errors.InputError: truth.tsv does not exist or is not a file
    """
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"cannot tell the format of {path.name} from its suffix; "
            "use a .csv, .tsv, .jsonl, .json or .parquet file"
        )
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    if kind == "json" and not _starts_with(path, b"["):
        return "jsonl"  # one object per line, under a .json name
    return kind


def _starts_with(path: Path, prefix: bytes) -> bool:
    with path.open("rb") as handle:
        return handle.read(4096).lstrip().startswith(prefix)


def read_table(path: Path) -> pd.DataFrame:
    """The rows of ``path``, by its suffix; a missing or malformed file is an InputError.

    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = file.write_text("a,b\\n1,x\\n")
    >>> read_table(file).to_dict("records")
    [{'a': 1, 'b': 'x'}]
    """
    import pandas as pd  # noqa: PLC0415 - the sidecar imports this package, not pandas

    kind = file_format(path)
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind in ("jsonl", "json"):
            return pd.read_json(path, lines=kind == "jsonl", dtype=False)
        # round_trip: pandas' default float parser rounds 17-digit decimals on its own, about
        # a third of them one unit in the last place off the double the text names.
        sep = "\t" if kind == "tsv" else ","
        return pd.read_csv(path, sep=sep, low_memory=False, float_precision="round_trip")
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
