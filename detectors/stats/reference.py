"""What a fitted reference keeps per column: compact, JSON-serialisable, scored many times.

A numerical column keeps its size, missing and type-violation counts, range, mean and
standard deviation, the PSI quantile bins with the reference's share in each, and a sorted
sample of at most ``sample_size`` values (all of them when there are fewer), drawn without
replacement with a fixed seed so refitting the same data gives the same profile. The sample
is stored as base64 little-endian float64: exact and about half the size of JSON numbers.
A categorical column keeps its category counts (the ``max_categories`` most frequent; the
rest are summed as ``other``).
"""

from __future__ import annotations

import base64
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from detectors.stats.psi import bin_counts, quantile_edges
from detectors.stats.samples import CategoryCounts, FloatArray, NumericalSample

Kind = Literal["numerical", "categorical"]
SEED = 20261125


@dataclass(frozen=True, slots=True)
class NumericalReference:
    """A numerical column of the reference."""

    rows: int
    missing: int
    violations: int
    minimum: float
    maximum: float
    mean: float
    std: float
    edges: FloatArray
    shares: FloatArray
    sample: FloatArray

    kind: Kind = "numerical"

    @property
    def size(self) -> int:
        """Usable (finite) values in the whole reference."""
        return self.rows - self.missing - self.violations

    def as_sample(self) -> NumericalSample:
        return NumericalSample.presorted(self.sample)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "missing": self.missing,
            "violations": self.violations,
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
            "std": self.std,
            "psi_edges": self.edges.tolist(),
            "psi_shares": self.shares.tolist(),
            "sample": base64.b64encode(self.sample.astype("<f8").tobytes()).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NumericalReference:
        sample = np.frombuffer(base64.b64decode(data["sample"]), dtype="<f8").astype(np.float64)
        return cls(
            rows=int(data["rows"]),
            missing=int(data["missing"]),
            violations=int(data["violations"]),
            minimum=_number(data["min"]),
            maximum=_number(data["max"]),
            mean=_number(data["mean"]),
            std=_number(data["std"]),
            edges=np.asarray(data["psi_edges"], dtype=np.float64),
            shares=np.asarray(data["psi_shares"], dtype=np.float64),
            sample=sample,
        )


@dataclass(frozen=True, slots=True)
class CategoricalReference:
    """A categorical column of the reference."""

    rows: int
    missing: int
    violations: int
    counts: CategoryCounts
    other: int

    kind: Kind = "categorical"

    @property
    def size(self) -> int:
        return self.rows - self.missing - self.violations

    def categories(self) -> CategoryCounts:
        """The counts, with the rare categories beyond the cap as one ``other`` bucket."""
        if not self.other:
            return self.counts
        return CategoryCounts.from_mapping({**self.counts.as_dict(), OTHER: self.other})

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "missing": self.missing,
            "violations": self.violations,
            "categories": [str(key) for key in self.counts.keys],
            "counts": self.counts.counts.tolist(),
            "other": self.other,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CategoricalReference:
        return cls(
            rows=int(data["rows"]),
            missing=int(data["missing"]),
            violations=int(data["violations"]),
            counts=CategoryCounts(
                tuple(data["categories"]), np.asarray(data["counts"], dtype=np.int64)
            ),
            other=int(data["other"]),
        )


ColumnReference = NumericalReference | CategoricalReference
OTHER = "\x00other"  # cannot collide with a real category: JSON payloads never hold NUL keys


def fit_numerical(
    values: FloatArray, *, violations: int, bins: int, sample_size: int
) -> NumericalReference:
    """Fit one numerical column; ``values`` holds NaN where a row had no usable number.

    >>> fit_numerical(np.array([1.0, 2.0, np.nan]), violations=0, bins=2, sample_size=10).missing
    1
    """
    rows = int(values.size)
    usable = np.sort(values[np.isfinite(values)])
    missing = rows - int(usable.size) - violations
    if usable.size == 0:
        empty = np.empty(0, dtype=np.float64)
        nan = float("nan")
        return NumericalReference(
            rows, missing, violations, nan, nan, nan, nan, empty, empty, empty
        )
    edges = quantile_edges(usable, bins)
    shares = bin_counts(usable, edges) / usable.size
    return NumericalReference(
        rows=rows,
        missing=missing,
        violations=violations,
        minimum=float(usable[0]),
        maximum=float(usable[-1]),
        mean=float(np.mean(usable)),
        std=float(np.std(usable)),
        edges=edges,
        shares=shares,
        sample=_bounded_sample(usable, sample_size),
    )


def fit_categorical(
    counts: Mapping[Hashable, int], *, rows: int, violations: int, max_categories: int
) -> CategoricalReference:
    """Fit one categorical column from its category counts (missing values not counted).

    >>> fit_categorical({"a": 3, "b": 1}, rows=5, violations=0, max_categories=10).missing
    1
    """
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    kept = dict(ordered[:max_categories])
    other = sum(count for _, count in ordered[max_categories:])
    missing = rows - sum(counts.values()) - violations
    return CategoricalReference(rows, missing, violations, CategoryCounts.from_mapping(kept), other)


def _number(value: Any) -> float:
    """A stored statistic; a column without usable values stored NaN, which JSON holds as null."""
    return float("nan") if value is None else float(value)


def column_from_json(data: Mapping[str, Any]) -> ColumnReference:
    """Read back a column written by ``to_json``."""
    if data["kind"] == "numerical":
        return NumericalReference.from_json(data)
    return CategoricalReference.from_json(data)


def _bounded_sample(sorted_values: FloatArray, size: int) -> FloatArray:
    if sorted_values.size <= size:
        return sorted_values
    rng = np.random.default_rng(SEED)
    chosen = rng.choice(sorted_values.size, size=size, replace=False)
    return sorted_values[np.sort(chosen)]
