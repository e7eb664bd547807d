"""Column data as the statistics consume it: finite numbers sorted once, or category counts."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def order_free_mean(values: FloatArray) -> float:
    """The mean, correctly rounded (``math.fsum``) and so the same whatever the values' order:
    a window read twice, its rows in another order, gives the very same figure.

    >>> order_free_mean(np.array([1e16, 1.0, -1e16])), float(np.mean([1e16, 1.0, -1e16]))
    (0.3333333333333333, 0.0)
    """
    return math.fsum(values.tolist()) / values.size


def finite(values: npt.ArrayLike) -> FloatArray:
    """The finite values as float64; NaN and infinities are dropped, as Evidently does."""
    array = np.asarray(values, dtype=np.float64)
    return array if np.isfinite(array).all() else array[np.isfinite(array)]


class NumericalSample:
    """Finite values of one numerical column, sorted at most once and shared by every test.

    >>> NumericalSample([3.0, float("nan"), 1.0]).sorted.tolist()
    [1.0, 3.0]
    """

    __slots__ = ("_sorted", "_values")

    def __init__(self, values: npt.ArrayLike) -> None:
        self._values = finite(values)
        self._sorted: FloatArray | None = None

    @classmethod
    def presorted(cls, sorted_values: FloatArray) -> NumericalSample:
        """Wrap values already sorted ascending and finite (a fitted reference sample)."""
        sample = cls.__new__(cls)
        sample._values = sorted_values
        sample._sorted = sorted_values
        return sample

    @property
    def values(self) -> FloatArray:
        return self._values

    @property
    def sorted(self) -> FloatArray:
        if self._sorted is None:
            self._sorted = np.sort(self._values)
        return self._sorted

    @property
    def size(self) -> int:
        return int(self._values.size)

    def categories(self) -> CategoryCounts:
        """The distinct values and their counts, for tests that treat numbers as categories."""
        keys, counts = np.unique(self.sorted, return_counts=True)
        return CategoryCounts(tuple(float(key) for key in keys), counts.astype(np.int64))


@dataclass(frozen=True, slots=True)
class CategoryCounts:
    """How often each category occurs in a column (missing values excluded).

    >>> CategoryCounts.from_mapping({"a": 2, "b": 1}).size
    3
    """

    keys: tuple[Hashable, ...]
    counts: IntArray

    @classmethod
    def from_mapping(cls, counts: Mapping[Any, int]) -> CategoryCounts:
        return cls(tuple(counts), np.fromiter(counts.values(), dtype=np.int64, count=len(counts)))

    @property
    def size(self) -> int:
        return int(self.counts.sum())

    @property
    def distinct(self) -> int:
        return int(np.count_nonzero(self.counts))

    def as_dict(self) -> dict[Hashable, int]:
        return {key: int(count) for key, count in zip(self.keys, self.counts, strict=True)}


def align(
    reference: CategoryCounts, current: CategoryCounts
) -> tuple[list[Hashable], IntArray, IntArray]:
    """Both counts over the union of categories seen in either (zero where absent)."""
    ref = reference.as_dict()
    cur = current.as_dict()
    keys = [key for key, count in ref.items() if count] + [
        key for key, count in cur.items() if count and key not in ref
    ]
    return (
        keys,
        _counts_for(ref, keys),
        _counts_for(cur, keys),
    )


def _counts_for(counts: Mapping[Hashable, int], keys: Iterable[Hashable]) -> IntArray:
    return np.array([counts.get(key, 0) for key in keys], dtype=np.int64)
