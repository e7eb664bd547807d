"""Rows of a window (or a reference) as the detectors read them: typed features plus outcomes.

Numerical features become float64 with NaN where a row has no usable number; categorical
ones become text (``None`` where missing), with numbers and booleans written as JSON writes
them, so a category looks the same whether it came from a CSV file or a stored payload.
Values of the wrong type (text in a numerical column that does not parse as a number; a
list or an object where a category belongs) are counted as type violations.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from detectors.stats.reference import Kind
from detectors.stats.samples import CategoryCounts, FloatArray, IntArray, NumericalSample

BoolArray = npt.NDArray[np.bool_]
TextArray = npt.NDArray[np.object_]
CodeArray = npt.NDArray[np.int32]


@dataclass(frozen=True)
class Rows:
    """Row-aligned arrays: features typed by kind, and optionally version, outcome, labels."""

    features: pd.DataFrame
    kinds: Mapping[str, Kind]
    violations: Mapping[str, int] = field(default_factory=dict)
    version: TextArray | None = None
    ts: FloatArray | None = None  # epoch seconds
    prediction: TextArray | None = None
    score: FloatArray | None = None
    label: TextArray | None = None
    label_received_at: FloatArray | None = None  # epoch seconds
    # A multiclass model's class probabilities per row, as JSON text (``class_matrix``).
    class_scores: TextArray | None = None
    # Each categorical column (and the predictions) factorised on first use, once: a
    # window's segments and detectors count the same column again and again, and hashing its
    # text every time was the largest pandas cost of a backfill. Keyed ("feature", name) or
    # ("prediction", ""); new rows (``select``, ``replace``) start empty.
    _coded: dict[tuple[str, str], CodedColumn] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __len__(self) -> int:
        return len(self.features)

    def select(self, mask: BoolArray, violations: Mapping[str, int] | None = None) -> Rows:
        """The rows where ``mask`` holds (violation counts as given, else none)."""
        if bool(mask.all()):
            # Every row, as for a model serving one version: the same arrays, not a copy.
            return replace(self, violations=violations or {})
        features = self.features.loc[mask].reset_index(drop=True)
        return self._taken(mask, features, violations or {})

    def rows_between(self, start: int, stop: int) -> Rows:
        """Rows ``start:stop`` as views of these rows' arrays, without violation counts."""
        if start == 0 and stop == len(self):
            return replace(self, violations={})
        features = pd.DataFrame(
            {name: self.features[name].to_numpy()[start:stop] for name in self.features},
            index=pd.RangeIndex(stop - start),
            copy=False,
        )
        return self._taken(slice(start, stop), features, {})

    def _taken(
        self, index: BoolArray | slice, features: pd.DataFrame, violations: Mapping[str, int]
    ) -> Rows:
        """These rows at ``index`` (a mask copies, a slice is a view), with ``features``
        already taken at it."""

        def part(values: ArrayT | None) -> ArrayT | None:
            return None if values is None else values[index]

        return replace(
            self,
            features=features,
            violations=violations,
            version=part(self.version),
            ts=part(self.ts),
            prediction=part(self.prediction),
            score=part(self.score),
            label=part(self.label),
            label_received_at=part(self.label_received_at),
            class_scores=part(self.class_scores),
        )

    def without_features(self) -> Rows:
        """The same rows with their outcomes and times but no feature columns."""
        return replace(self, features=pd.DataFrame(index=self.features.index), kinds={})

    def by_version(self, violations: Mapping[str, Mapping[str, int]]) -> dict[str, Rows]:
        """The rows of each version, with that version's violation counts."""
        if self.version is None:
            return {"": self}
        return {
            str(version): self.select(self.version == version, violations.get(str(version), {}))
            for version in sorted(set(self.version.tolist()))
        }

    def numbers(self, feature: str) -> FloatArray:
        return self.features[feature].to_numpy(dtype=np.float64, na_value=np.nan)

    def sample(self, feature: str) -> NumericalSample:
        return NumericalSample(self.numbers(feature))

    def counts(self, feature: str, mask: BoolArray | None = None) -> CategoryCounts:
        return self._coded_feature(feature).counts(mask)

    def prediction_counts(self, mask: BoolArray | None = None) -> CategoryCounts:
        """How often each predicted class occurs (where ``mask`` holds)."""
        if self.prediction is None:
            raise ValueError("these rows have no predictions")
        return self._coded_column(("prediction", ""), self.prediction).counts(mask)

    def segments(self, feature: str, limit: int) -> list[tuple[str, BoolArray]]:
        """The ``limit`` most frequent values of ``feature`` (ties by their text), each with
        the mask of its rows; missing values are no segment."""
        coded = self._coded_feature(feature)
        tallies = coded.tallies()
        names = [str(value) for value in coded.categories.tolist()]
        ranked = sorted(
            (index for index in range(len(names)) if tallies[index]),
            key=lambda index: (-int(tallies[index]), names[index]),
        )
        return [(names[index], coded.codes == index) for index in ranked[:limit]]

    def _coded_feature(self, name: str) -> CodedColumn:
        return self._coded_column(("feature", name), self.features[name])

    def _coded_column(
        self, key: tuple[str, str], values: pd.Series[Any] | TextArray
    ) -> CodedColumn:
        coded = self._coded.get(key)
        if coded is None:
            # Two threads may code the same column at once; both get equal codes.
            coded = self._coded[key] = CodedColumn.of(values)
        return coded


ArrayT = TypeVar("ArrayT", FloatArray, TextArray)


@dataclass(frozen=True)
class Requests:
    """One row per request: version, latency, HTTP status, and whether the upstream failed."""

    version: TextArray
    latency_ms: FloatArray
    status_code: IntArray
    upstream_failed: BoolArray

    def __len__(self) -> int:
        return int(self.latency_ms.size)

    def by_version(self) -> dict[str, Requests]:
        versions = sorted(set(self.version.tolist()))
        if len(versions) == 1:  # every request: these arrays, not a copy
            return {str(versions[0]): self}
        return {
            str(version): Requests(
                self.version[mask],
                self.latency_ms[mask],
                self.status_code[mask],
                self.upstream_failed[mask],
            )
            for version in versions
            for mask in [self.version == version]
        }


@dataclass(frozen=True)
class CodedColumn:
    """A categorical column as codes into its categories, -1 where a value is missing."""

    # 32-bit: a window's coded columns are kept for the whole pass (a million rows: 4 MB
    # each instead of 8), and no window has 2**31 distinct categories.
    codes: CodeArray
    categories: TextArray

    @classmethod
    def of(cls, values: pd.Series[Any] | TextArray) -> CodedColumn:
        """Codes in the order categories first occur (``pd.factorize``: None and NaN are
        missing); a pandas categorical column keeps its own codes."""
        if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
            own: CodeArray = values.cat.codes.to_numpy().astype(np.int32)
            return cls(own, values.cat.categories.to_numpy(dtype=object))
        codes, uniques = pd.factorize(np.asarray(values, dtype=object))
        return cls(codes.astype(np.int32), np.asarray(uniques, dtype=object))

    def present(self, mask: BoolArray | None = None) -> CodeArray:
        """The codes of the rows where ``mask`` holds, missing values left out."""
        codes = self.codes if mask is None else self.codes[mask]
        return codes[codes >= 0]

    def tallies(self, mask: BoolArray | None = None) -> IntArray:
        """How many of those rows hold each category, in the categories' order."""
        return np.bincount(self.present(mask), minlength=len(self.categories))

    def counts(self, mask: BoolArray | None = None) -> CategoryCounts:
        """How often each category occurs where ``mask`` holds, in first-occurrence order
        among those rows (as ``value_counts(sort=False)`` lists them)."""
        codes = self.present(mask)
        found, first = np.unique(codes, return_index=True)
        found = found[np.argsort(first, kind="stable")]
        tallies = np.bincount(codes, minlength=len(self.categories))
        return CategoryCounts(
            tuple(self.categories[found].tolist()), tallies[found].astype(np.int64)
        )


def category_counts(
    values: pd.Series[Any] | TextArray, mask: BoolArray | None = None
) -> CategoryCounts:
    """How often each category occurs (where ``mask`` holds); missing values are not counted.

    Categories come in the order they first occur, as ``value_counts(sort=False)`` lists
    them. Counting a column of ``Rows`` more than once: ``Rows.counts`` codes it once.

    >>> category_counts(np.array(["b", None, "a", "b"], dtype=object)).as_dict()
    {'b': 2, 'a': 1}
    """
    return CodedColumn.of(values).counts(mask)


def coerce_numerical(values: pd.Series[Any]) -> tuple[FloatArray, int]:
    """Float64 values (NaN when unusable) and how many present values were not numbers."""
    if pd.api.types.is_bool_dtype(values):
        return np.full(len(values), np.nan), int(values.notna().sum())
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isfinite(numbers), numbers, np.nan), 0
    present = values.notna().to_numpy() & ~values.map(_is_bool).to_numpy(dtype=bool)
    coerced = pd.to_numeric(values.where(present), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    violations = int(np.count_nonzero(values.notna().to_numpy() & np.isnan(coerced)))
    return np.where(np.isfinite(coerced), coerced, np.nan), violations


def coerce_categorical(values: pd.Series[Any]) -> tuple[TextArray, int]:
    """Categories as JSON-style text (None when missing) and how many were lists or objects."""
    # Text columns (a string dtype, or objects that are all strings, as Parquet's are) need
    # no value-by-value look: that loop cost a backfilled hour from a file about 80 ms.
    text_only = pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values)
    if text_only or pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        text = values.to_numpy(dtype=object, copy=True)
        text[values.isna().to_numpy()] = None
        return text, 0
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iub":
        # NumPy integers or booleans (a class index, as Parquet and CSV type it), which hold
        # no missing values: their text as _category writes it, without a call per value.
        plain = values.to_numpy()
        if plain.dtype.kind == "b":
            return np.where(plain, "true", "false").astype(object), 0
        return plain.astype(str).astype(object), 0
    converted = [_category(value) for value in values.tolist()]
    violations = sum(1 for value in converted if value is _VIOLATION)
    return (
        np.array([None if value is _VIOLATION else value for value in converted], dtype=object),
        violations,
    )


def typed_features(
    frame: pd.DataFrame, kinds: Mapping[str, Kind]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The configured feature columns of ``frame``, typed; absent columns count as missing."""
    columns: dict[str, Any] = {}
    violations: dict[str, int] = {}
    for name, kind in kinds.items():
        raw = frame[name] if name in frame.columns else pd.Series([None] * len(frame), dtype=object)
        if kind == "numerical":
            columns[name], violations[name] = coerce_numerical(raw)
        else:
            columns[name], violations[name] = coerce_categorical(raw)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame))), violations


_VIOLATION = object()


def _category(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return json.dumps(float(value)) if math.isfinite(value) else None
    return _VIOLATION


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def rows_from_frame(
    frame: pd.DataFrame,
    kinds: Mapping[str, Kind],
    *,
    prefix: str = "",
    violations: Mapping[str, int] | None = None,
) -> Rows:
    """Rows from a typed frame (``Store.read_rows``: features as ``prefix + name``)."""
    # The frame's own columns, not a copy of them: a 1M-row window's features are read
    # once and held once (rows are never written to after this).
    features = pd.DataFrame(
        {name: _column(frame, prefix + name, kind) for name, kind in kinds.items()},
        index=pd.RangeIndex(len(frame)),
        copy=False,
    )
    return Rows(
        features,
        dict(kinds),
        violations=dict(violations or {}),
        version=_text(frame, "version"),
        ts=_numbers(frame, "ts"),
        prediction=_text(frame, "prediction"),
        score=_numbers(frame, "score"),
        label=_text(frame, "label"),
        label_received_at=_numbers(frame, "label_received_at"),
        class_scores=_text(frame, "class_scores"),
    )


def rows_by_version(
    frame: pd.DataFrame, kinds: Mapping[str, Kind], *, prefix: str = ""
) -> dict[str, Rows]:
    """``rows_from_frame(frame, kinds, prefix=prefix).by_version({})``, emptying ``frame``.

    The same rows in the same order, without holding the window twice: the rows are put in
    version order once (a stable sort, so each version keeps its own order), a column at a
    time, each column leaving ``frame`` as its reordered copy is made, and every version's
    rows are then views of one slice of those columns. ``by_version`` instead copies every
    version's rows out of a window still held whole: 260 MB more at the peak of a 1M-row,
    10-feature window. A window of one version is not reordered at all.
    """
    if "version" not in frame or not len(frame):
        return rows_from_frame(frame, kinds, prefix=prefix).by_version({})
    versions = frame["version"].astype("category")
    names = [str(name) for name in versions.cat.categories]
    codes = versions.cat.codes.to_numpy()
    del versions
    order = np.argsort(codes, kind="stable") if len(names) > 1 else None
    tallies = np.bincount(codes, minlength=len(names))
    bounds = np.concatenate(([0], np.cumsum(tallies)))
    columns: dict[str, Any] = {}
    for name in list(frame.columns):
        values = frame.pop(name).array
        columns[name] = values if order is None else values.take(order)
        del values
    sorted_frame = pd.DataFrame(columns, index=pd.RangeIndex(len(codes)), copy=False)
    del columns
    whole = rows_from_frame(sorted_frame, kinds, prefix=prefix)
    del sorted_frame
    return {
        version: whole.rows_between(int(bounds[index]), int(bounds[index + 1]))
        for index, version in enumerate(names)
        if tallies[index]
    }


def present(values: TextArray) -> BoolArray:
    """Where a text array holds a value (not None), in numpy's loop rather than Python's.

    >>> present(np.array(["a", None, "b"], dtype=object)).tolist()
    [True, False, True]
    """
    missing: BoolArray = pd.isna(values)  # None (and NaN, which text arrays never hold)
    return ~missing


def class_matrix(raw: TextArray, classes: Sequence[str]) -> FloatArray:
    """Rows' class probabilities as an n-by-k matrix in ``classes`` order, NaN in a row that
    has none or whose probabilities do not fit: a list of another length, an object
    without every class.

    >>> class_matrix(np.array(['[0.1, 0.2, 0.7]', '{"b": 1, "a": 0, "c": 0}', None, '[1]'],
    ...     dtype=object), ["a", "b", "c"]).tolist()
    [[0.1, 0.2, 0.7], [0.0, 1.0, 0.0], [nan, nan, nan], [nan, nan, nan]]
    """
    matrix = np.full((len(raw), len(classes)), np.nan)
    # A window repeats few distinct texts only by chance, but parsing each once costs nothing.
    parsed: dict[str, FloatArray | None] = {}
    for index, text in enumerate(raw):
        if text is None:
            continue
        if text not in parsed:
            parsed[text] = _probabilities(json.loads(text), classes)
        row = parsed[text]
        if row is not None:
            matrix[index] = row
    return matrix


def _probabilities(value: Any, classes: Sequence[str]) -> FloatArray | None:
    if isinstance(value, dict):
        if not all(name in value for name in classes):
            return None
        value = [value[name] for name in classes]
    if not isinstance(value, list) or len(value) != len(classes):
        return None
    return np.asarray(value, dtype=np.float64)


def class_score_text(frame: pd.DataFrame, classes: Sequence[str], prefix: str) -> TextArray | None:
    """A table's class probabilities (a column ``prefix + class`` for each class) as the
    JSON text the store keeps, None in a row missing any; None without every column."""
    names = [prefix + name for name in classes]
    if not classes or not all(name in frame for name in names):
        return None
    values = np.column_stack([pd.to_numeric(frame[name], errors="coerce") for name in names])
    complete = np.isfinite(values).all(axis=1)
    texts = [
        json.dumps(row.tolist()) if ok else None for row, ok in zip(values, complete, strict=True)
    ]
    return np.array(texts, dtype=object)


def requests_from_frame(frame: pd.DataFrame) -> Requests:
    """Requests from ``Store.read_serving``'s frame."""
    version = _text(frame, "version")
    return Requests(
        version=version if version is not None else np.empty(0, dtype=object),
        latency_ms=frame["latency_ms"].to_numpy(dtype=np.float64),
        status_code=frame["status_code"].to_numpy(dtype=np.int64),
        upstream_failed=frame["upstream_failed"].to_numpy(dtype=bool),
    )


def _column(frame: pd.DataFrame, name: str, kind: Kind) -> Any:
    if name not in frame:
        return np.full(len(frame), np.nan if kind == "numerical" else None)
    if kind == "numerical":
        return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return _text(frame, name)


def _text(frame: pd.DataFrame, name: str) -> TextArray | None:
    """Text as objects, None where missing (pandas reads missing text back as NaN)."""
    if name not in frame:
        return None
    values = frame[name].to_numpy(dtype=object, copy=True)
    values[frame[name].isna().to_numpy()] = None
    return values


def _numbers(frame: pd.DataFrame, name: str) -> FloatArray | None:
    if name not in frame:
        return None
    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
