"""A Parquet dataset's row groups indexed by the range of their time column, so that reading
one window opens only the row groups that can hold it.

pyarrow's scanner prunes row groups by their statistics too, but it evaluates every file's
footer again on each scan: over a month of daily files that was about 35 ms per hourly
window, three times the read itself. The footers are read here once, when a backfill starts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

_EARLIEST = np.iinfo(np.int64).min
_LATEST = np.iinfo(np.int64).max


class RowGroupIndex:
    """Every row group of ``dataset`` with the first and last time in ``column``.

    A row group without statistics for the column (a writer may leave them out) is read for
    every window; the window's own filter still keeps only its rows.
    """

    def __init__(self, dataset: Any, column: str) -> None:
        self._dataset = dataset
        self._pieces: list[Any] = []
        first: list[int] = []
        last: list[int] = []
        for fragment in dataset.get_fragments():
            fragment.ensure_complete_metadata()
            for piece in fragment.split_by_row_group():
                statistics = piece.row_groups[0].statistics or {}
                bounds = statistics.get(column) or {}
                low, high = bounds.get("min"), bounds.get("max")
                self._pieces.append(piece)
                first.append(_EARLIEST if low is None else _nanoseconds(low))
                last.append(_LATEST if high is None else _nanoseconds(high))
        self._first = np.asarray(first, dtype=np.int64)
        self._last = np.asarray(last, dtype=np.int64)

    def covering(self, start: datetime, end: datetime) -> Any:
        """A dataset of the row groups that may hold times in ``[start, end)``."""
        import pyarrow.dataset as ds  # noqa: PLC0415 - pyarrow loads only when a file is read

        low, high = _nanoseconds(start), _nanoseconds(end)
        chosen = np.flatnonzero((self._last >= low) & (self._first < high))
        return ds.FileSystemDataset(
            [self._pieces[i] for i in chosen.tolist()],
            self._dataset.schema,
            self._dataset.format,
            filesystem=self._dataset.filesystem,
        )


def _nanoseconds(moment: Any) -> int:
    """Nanoseconds since the epoch, exactly; a naive time is read as UTC, as the files are."""
    return int(pd.Timestamp(moment).value)
