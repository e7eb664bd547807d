"""A backfill's late labels by label key, in a shape that crosses to worker processes cheaply.

Each worker process gets the labels once, pickled. As a pandas frame with an index of 1.8M
Python strings (a month at 100k predictions a day) that took 0.6 s to dump per worker in the
parent and 0.2 s to load; as Arrow text, label codes and a float column it is a few copies of
buffers, 0.03 s to dump and 0.02 s to load. A worker hashes the keys itself on its first
lookup (about a second for 1.8M keys): a hash table does not pickle, and later lookups then
take under a millisecond for a window's few thousand keys, against 5 ms for a binary search
of the sorted keys.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
TextArray = np.ndarray[Any, np.dtype[np.object_]]
CodeArray = np.ndarray[Any, np.dtype[np.signedinteger[Any]]]


class LabelTable:
    """Labels by key: the last one given for a key replaces earlier ones, as upserts do."""

    def __init__(self, keys: Any, codes: CodeArray, distinct: TextArray, arrived: FloatArray):
        """``keys`` an Arrow string array (one chunk); each label is ``distinct[code]``
        (None for code -1); ``arrived`` is when each label became known, in epoch seconds;
        all in the order given."""
        if not len(keys) == len(codes) == len(arrived):
            raise ValueError("keys, labels and arrival times differ in length")
        kept = _last_of_each(keys)
        if kept is not None:
            keys, codes, arrived = keys.take(kept), codes[kept], arrived[kept]
        self._keys = keys
        self._codes = np.asarray(codes, dtype=np.int32)
        # A trailing None, so that the code -1 reads as a missing label.
        self._distinct = np.concatenate(
            [np.asarray(distinct, dtype=object), np.array([None], dtype=object)]
        )
        self._arrived = np.asarray(arrived, dtype=np.float64)
        self._index: pd.Index[Any] | None = None

    @classmethod
    def of(cls, keys: list[str], values: TextArray, arrived: FloatArray) -> LabelTable:
        """Labels as one text (or None) per key."""
        import pyarrow as pa  # noqa: PLC0415 - an optional extra

        codes, distinct = pd.factorize(values, use_na_sentinel=True)
        return cls(pa.array(keys, type=pa.string()), codes, distinct, arrived)

    def __len__(self) -> int:
        return len(self._codes)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_index"] = None  # each process hashes the keys itself, once
        return state

    def lookup(self, keys: TextArray) -> tuple[TextArray, FloatArray]:
        """Each key's label (None when it has none) and its arrival time (NaN)."""
        if self._index is None:
            self._index = pd.Index(self._keys.to_numpy(zero_copy_only=False), dtype=object)
        found = self._index.get_indexer(pd.Index(keys, dtype=object))
        missing = found < 0
        label: TextArray = self._distinct[self._codes[found]]
        label[missing] = None
        arrived = self._arrived[found]
        arrived[missing] = np.nan
        return label, arrived

    def frame(self) -> pd.DataFrame:
        """The labels as a frame indexed by key, in the order they were given."""
        return pd.DataFrame(
            {"label": self._distinct[self._codes], "label_received_at": self._arrived},
            index=pd.Index(self._keys.to_numpy(zero_copy_only=False), name="label_key"),
        )


def _last_of_each(keys: Any) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    """The positions to keep so each key appears once, at its last place; None if every key
    is already unique. (A stable sort puts equal keys side by side in their original order:
    0.3 s for 1.8M keys, where pandas' uniqueness check hashed them in about 1 s.)"""
    import pyarrow.compute as pc  # noqa: PLC0415

    if len(keys) < 2:
        return None
    order = pc.array_sort_indices(keys).to_numpy()
    ordered = keys.take(order)
    repeated = pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))
    earlier = repeated.to_numpy(zero_copy_only=False)
    if not earlier.any():
        return None
    keep = np.ones(len(keys), dtype=bool)
    keep[order[:-1][earlier]] = False
    return np.flatnonzero(keep)
