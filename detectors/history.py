"""Past predictions from a file (Parquet file or partitioned directory, CSV, JSON lines), read
window by window so that memory stays bounded however long the range or large the file.

A Parquet source whose time column is a timestamp is read in place: each window is one
filtered read, and row groups outside it are skipped by their statistics. Anything else
(CSV, JSON lines, times as text) is streamed once, in chunks, into a scratch Parquet
dataset partitioned by window, and each window is then read from its own folder. Rows
become what ``Store.read_rows`` gives the live detectors: typed features with their type
violations, the prediction and label as JSON-style text, times as epoch seconds. Late
labels join on the label key the live join uses (request id and row, or instance id).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detectors.backfill import WindowData
from detectors.label_table import LabelTable
from detectors.row_groups import RowGroupIndex
from detectors.rows import (
    Requests,
    class_score_text,
    coerce_categorical,
    rows_from_frame,
    typed_features,
)
from detectors.settings import ModelSettings
from detectors.windows import Window
from modeltap.errors import InputError
from modeltap.files import SUFFIXES
from modeltap.schema import MAX_ID, bounded
from modeltap.store import FEATURE_PREFIX

CHUNK_ROWS = 200_000
_WINDOW = "window"  # the scratch dataset's partition column: window start, epoch seconds


@dataclass(frozen=True, slots=True)
class Columns:
    """Which column of the file holds what; features are named as the model configures them."""

    ts: str = "ts"
    prediction: str = "prediction"
    score: str = "score"
    version: str = "version"
    request_id: str = "request_id"
    row_index: str = "row_index"
    instance_id: str | None = None
    latency_ms: str = "latency_ms"
    status_code: str = "status_code"


def file_kind(path: Path) -> str:
    """``parquet`` for a directory or a Parquet file, else the format its suffix names."""
    if path.is_dir():
        return "parquet"
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind not in ("parquet", "csv", "tsv", "jsonl", "json"):
        raise InputError(
            f"cannot tell the format of {path.name} from its suffix; use a .parquet file or "
            "folder, .csv, .tsv or .jsonl"
        )
    return "jsonl" if kind == "json" else kind


class FileSource:
    """A ``WindowSource`` over a file of past predictions, with optional late labels."""

    def __init__(
        self,
        path: Path,
        settings: ModelSettings,
        columns: Columns,
        *,
        labels: LabelTable | None = None,
        scratch: Path | None = None,
    ) -> None:
        self._path = path
        self._settings = settings
        self._columns = columns
        self._labels = labels
        self._kind = file_kind(path)
        self._scratch: Path | None = None
        self._owned = True
        self._scratch_parent = scratch
        self._dataset: Any = None
        # An in-place Parquet source's row groups, indexed on the first window read: a
        # parent that only counts events for its workers never reads every footer.
        self._groups: RowGroupIndex | None = None
        self._size: timedelta | None = None
        names = self.column_names()
        # Files with a latency column carry serving rows too (one request per row).
        self._serving = columns.latency_ms in names
        needed = [columns.ts, columns.prediction, *settings.kinds]
        missing = [name for name in needed if name not in names]
        if missing:
            raise InputError(
                f"{path} has no column {', '.join(repr(m) for m in missing)} (the model "
                f"{settings.model!r} needs its time, prediction and every configured feature); "
                f"its columns are: {', '.join(names)}"
            )

    def column_names(self) -> list[str]:
        if self._kind == "parquet":
            return list(self._source_dataset().schema.names)
        first = next(_chunks(self._path, self._kind, rows=10), pd.DataFrame())
        return [str(name) for name in first.columns]

    def _source_dataset(self) -> Any:
        import pyarrow.dataset as ds  # noqa: PLC0415 - an optional extra

        try:
            return ds.dataset(self._path, format="parquet", partitioning="hive")
        except (OSError, ValueError) as error:
            raise InputError(f"{self._path} is not readable as Parquet: {error}") from None

    def _in_place(self) -> bool:
        """Whether windows can be filtered straight from the file (a Parquet timestamp)."""
        import pyarrow as pa  # noqa: PLC0415

        if self._kind != "parquet":
            return False
        field = self._source_dataset().schema.field(self._columns.ts)
        return bool(pa.types.is_timestamp(field.type))

    def prepare(self, size: timedelta) -> None:
        """Make windows of ``size`` readable; streams non-Parquet input to scratch once."""
        self._size = size
        if self._in_place():
            self._dataset = self._source_dataset()
            self._groups = None
            return
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.dataset as ds  # noqa: PLC0415

        self._scratch = Path(
            tempfile.mkdtemp(prefix="modeltap-backfill-", dir=self._scratch_parent)
        )
        seconds = size.total_seconds()
        source = (
            _parquet_chunks(self._source_dataset())
            if self._kind == "parquet"
            else _chunks(self._path, self._kind)
        )
        for index, chunk in enumerate(source):
            table = self._canonical(chunk)
            starts = (np.floor(table["ts"].to_numpy() / seconds) * seconds).astype(np.int64)
            table[_WINDOW] = starts
            ds.write_dataset(
                pa.Table.from_pandas(table, preserve_index=False),
                self._scratch,
                format="parquet",
                partitioning=ds.partitioning(pa.schema([(_WINDOW, pa.int64())]), flavor="hive"),
                basename_template=f"chunk-{index}-{{i}}.parquet",
                existing_data_behavior="overwrite_or_ignore",
            )
        self._dataset = (
            ds.dataset(self._scratch, format="parquet", partitioning="hive")
            if any(self._scratch.iterdir())
            else None
        )

    def scratch(self) -> Path | None:
        """The scratch dataset ``prepare`` streamed the file into, if it had to."""
        return self._scratch

    def attach(self, scratch: Path, size: timedelta) -> None:
        """Read another process's scratch dataset (its owner removes it)."""
        import pyarrow.dataset as ds  # noqa: PLC0415

        self._size = size
        self._dataset = ds.dataset(scratch, format="parquet", partitioning="hive")
        self._scratch = scratch
        self._owned = False

    def close(self) -> None:
        if self._scratch is not None and self._owned:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def event_counts(
        self, start: datetime, end: datetime, size: timedelta
    ) -> dict[datetime, tuple[int, int]]:
        if self._size != size:
            self.prepare(size)
        counts: dict[datetime, tuple[int, int]] = {}
        for batch in self._batches(start, end, ["ts"] if self._scratch else [self._columns.ts]):
            moments = _epoch(batch.column(0).to_pandas())
            seconds = size.total_seconds()
            keys, hits = np.unique(np.floor(moments / seconds) * seconds, return_counts=True)
            for key, hit in zip(keys.tolist(), hits.tolist(), strict=True):
                moment = datetime.fromtimestamp(key, UTC)
                pair = counts.get(moment, (0, 0))
                requests = hit if self._serving else 0
                counts[moment] = (pair[0] + requests, pair[1] + hit)
        return counts

    def _batches(self, start: datetime, end: datetime, columns: list[str]) -> Iterator[Any]:
        if self._dataset is None:
            return iter(())
        scanner = self._dataset.scanner(columns=columns, filter=self._filter(start, end))
        return (batch for batch in scanner.to_batches() if batch.num_rows)

    def _filter(self, start: datetime, end: datetime) -> Any:
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.dataset as ds  # noqa: PLC0415

        if self._scratch is not None:
            seconds = self._size.total_seconds() if self._size else 1.0
            first = int(start.timestamp() // seconds * seconds)
            return (ds.field(_WINDOW) >= first) & (ds.field(_WINDOW) < int(end.timestamp()))
        kind = self._dataset.schema.field(self._columns.ts).type
        # A naive timestamp column is read as UTC (how warehouses export it).
        low = pa.scalar(start if kind.tz else start.replace(tzinfo=None), type=kind)
        high = pa.scalar(end if kind.tz else end.replace(tzinfo=None), type=kind)
        return (ds.field(self._columns.ts) >= low) & (ds.field(self._columns.ts) < high)

    def read(self, window: Window, expected: int = 0) -> WindowData:
        if self._size != window.size:
            self.prepare(window.size)
        if self._dataset is None:
            return WindowData()
        dataset = self._dataset
        if self._scratch is None:
            if self._groups is None:
                self._groups = RowGroupIndex(self._dataset, self._columns.ts)
            dataset = self._groups.covering(window.start, window.end)
        table = dataset.to_table(filter=self._filter(window.start, window.end))
        frame = table.to_pandas()
        if self._scratch is None:
            frame = self._canonical(frame)
        return self._window_data(frame)

    def _canonical(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The file's columns as the store would give them back (see the module's docstring)."""
        c = self._columns
        frame = frame.reset_index(drop=True)
        size = len(frame)
        # Collected, then made a frame once: column by column, inserting cost more than
        # the conversions themselves (about 10 ms of a backfilled hour).
        out: dict[str, Any] = {"ts": _epoch(frame[c.ts])}
        unreadable = np.isnan(out["ts"])
        if bool(unreadable.any()):
            bad = frame[c.ts][unreadable].iloc[0]
            raise InputError(f"{self._path}: {c.ts} holds {bad!r}, which is not a time")
        version = frame[c.version] if c.version in frame else pd.Series([""] * size)
        out["version"] = version.fillna("").astype(str).to_numpy()
        out["prediction"] = coerce_categorical(frame[c.prediction])[0]
        if c.score in frame:
            out["score"] = pd.to_numeric(frame[c.score], errors="coerce").to_numpy()
        else:
            out["score"] = np.full(size, np.nan)
        class_scores = class_score_text(frame, self._settings.classes, f"{c.score}_")
        if class_scores is not None:
            # Typed as text even in a chunk without any, so every scratch file agrees.
            out["class_scores"] = pd.array(class_scores, dtype="string")
        features, _ = typed_features(frame, self._settings.kinds)
        for name in self._settings.kinds:
            out[FEATURE_PREFIX + name] = features[name]
            # Per row, whether the value was of the wrong type: violations are counted per
            # window and version, so they have to survive the scratch dataset row by row.
            raw = frame[name]
            present = raw.notna().to_numpy()
            usable = features[name].notna().to_numpy()
            out["violation:" + name] = _wrong_type(raw, present, usable)
        out["label_key"] = self._keys(frame)
        if c.latency_ms in frame:
            out["latency_ms"] = pd.to_numeric(frame[c.latency_ms], errors="coerce").to_numpy()
            status = frame[c.status_code] if c.status_code in frame else pd.Series([200] * size)
            out["status_code"] = pd.to_numeric(status, errors="coerce").fillna(200).astype(np.int64)
        return pd.DataFrame(out, index=pd.RangeIndex(size))

    def _keys(self, frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.object_]]:
        """The live label key of each row: instance id when configured, else request id + row."""
        c = self._columns
        if c.instance_id is not None and c.instance_id in frame:
            ids = frame[c.instance_id].astype(str)
            return ("i:" + _bounded_ids(ids)).to_numpy(dtype=object)
        if c.request_id not in frame:
            return np.full(len(frame), None, dtype=object)
        rows = frame[c.row_index] if c.row_index in frame else pd.Series(np.zeros(len(frame)))
        index = pd.to_numeric(rows, errors="coerce").fillna(0).astype(np.int64).astype(str)
        keys = "r:" + _bounded_ids(frame[c.request_id].astype(str)) + ":" + index
        return keys.to_numpy(dtype=object)

    def _window_data(self, frame: pd.DataFrame) -> WindowData:
        if self._labels is not None and len(self._labels):
            label, arrived = self._labels.lookup(frame["label_key"].to_numpy(dtype=object))
            frame["label"] = label
            frame["label_received_at"] = arrived
        else:
            frame["label"] = np.full(len(frame), None, dtype=object)
            frame["label_received_at"] = np.nan
        kinds = self._settings.kinds
        rows = rows_from_frame(frame, kinds, prefix=FEATURE_PREFIX)
        violations = {
            str(version): {name: int(part["violation:" + name].sum()) for name in kinds}
            for version, part in frame.groupby("version", sort=True)
        }
        requests: dict[str, Requests] = {}
        if "latency_ms" in frame:
            for version, part in frame.groupby("version", sort=True):
                status = part["status_code"].to_numpy(dtype=np.int64)
                requests[str(version)] = Requests(
                    version=part["version"].to_numpy(dtype=object),
                    latency_ms=part["latency_ms"].to_numpy(dtype=np.float64),
                    status_code=status,
                    upstream_failed=np.zeros(len(part), dtype=bool),
                )
        return WindowData(requests, rows.by_version(violations))


def read_labels(path: Path, label_field: str, received_at: datetime) -> LabelTable:
    """Labels from a file validated as ``monitor labels import`` validates them, by their
    label key; a later label for the same key replaces the earlier, as upserts do."""
    from detectors import label_columns  # noqa: PLC0415
    from modeltap.files import file_format  # noqa: PLC0415
    from modeltap.labelfiles import read_chunks  # noqa: PLC0415
    from modeltap.labels import parse_labels  # noqa: PLC0415

    plain = label_columns.read(path, label_field, file_format(path), received_at)
    if plain is not None:
        return plain
    keys: list[str] = []
    values: list[Any] = []
    arrived: list[float] = []
    for chunk in read_chunks(path):
        problems = [f"record {number}: {item}" for number, item in chunk if isinstance(item, str)]
        if problems:
            raise InputError(f"{path}: {problems[0]}")
        items = [item for _, item in chunk]
        where = f"{path.name} record {chunk[0][0]}"
        for label in parse_labels(items, received_at, label_field=label_field, where=where):
            keys.append(label.label_key)
            values.append(label.value)
            # When the truth became known (its `time`), as a live label is dated on arrival.
            arrived.append(label.ts.timestamp())
    return LabelTable.of(
        keys,
        coerce_categorical(pd.Series(values, dtype=object))[0],
        np.asarray(arrived, dtype=np.float64),
    )


def _bounded(value: str) -> str:
    return value if len(value) <= MAX_ID and value.isprintable() else bounded(value, MAX_ID)


def _bounded_ids(ids: pd.Series[Any]) -> pd.Series[Any]:
    """Ids as the store keeps them (``_bounded``), looking one by one only at the odd ones."""
    plain = (ids.str.len() <= MAX_ID) & ids.map(str.isprintable).astype(bool)
    if bool(plain.all()):
        return ids
    return ids.where(plain, ids[~plain].map(_bounded))


def _wrong_type(raw: pd.Series[Any], present: Any, usable: Any) -> Any:
    """Per row, 1 where a value is present but unusable for its kind (what ``typed_features``
    counts): text or a boolean among numbers, a list or an object among categories."""
    if pd.api.types.is_float_dtype(raw) or pd.api.types.is_integer_dtype(raw):
        return np.zeros(len(raw), dtype=np.int8)  # only numbers here; NaN is missing
    if not bool((present & ~usable).any()):
        return np.zeros(len(raw), dtype=np.int8)  # every value present was usable
    finite = raw.map(lambda value: not (isinstance(value, float) and not np.isfinite(value)))
    return (present & ~usable & finite.to_numpy(dtype=bool)).astype(np.int8)


def _epoch(values: pd.Series[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Times as epoch seconds: datetimes (naive ones as UTC), ISO text, or epoch numbers."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(values):
        # A Parquet timestamp: its nanoseconds as they are (in UTC when zoned), without the
        # value-by-value parse below (6 ms of a backfilled hour).
        stamps = values.to_numpy(dtype="datetime64[ns]")
        seconds = stamps.astype(np.int64).astype(np.float64) / 1e9
        seconds[np.isnat(stamps)] = np.nan
        return seconds
    moments = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    nanos = moments.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
    nanos[moments.isna().to_numpy()] = np.nan
    return nanos / 1e9


def _chunks(path: Path, kind: str, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The file in frames of ``rows``: CSV cells typed as pandas types them, JSON as written."""
    try:
        if kind == "jsonl":
            with pd.read_json(path, lines=True, dtype=False, chunksize=rows) as reader:
                yield from reader
        else:
            sep = "\t" if kind == "tsv" else ","
            # round_trip: exact doubles (see modeltap.files.read_table).
            with pd.read_csv(
                path, sep=sep, chunksize=rows, low_memory=False, float_precision="round_trip"
            ) as reader:
                yield from reader
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path} is not readable as {kind}: {first}") from None


def _parquet_chunks(dataset: Any) -> Iterator[pd.DataFrame]:
    for batch in dataset.to_batches(batch_size=CHUNK_ROWS):
        if batch.num_rows:
            yield batch.to_pandas()
