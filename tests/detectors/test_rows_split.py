"""Splitting a window's frame by version, and joining its slices, without holding it twice."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from detectors.rows import Rows, rows_by_version, rows_from_frame
from detectors.stats.reference import Kind
from modeltap.store import concat_frames

KINDS: dict[str, Kind] = {"age": "numerical", "plan": "categorical"}
PREFIX = "feature:"


def window(size: int, versions: list[str], seed: int) -> pd.DataFrame:
    """A frame as the store reads it: versions interleaved, gaps in every column."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, size)
    age[rng.uniform(size=size) < 0.1] = np.nan
    plan = rng.choice(np.array(["basic", "pro", None], dtype=object), size=size)
    label = rng.choice(np.array(["0", "1", None], dtype=object), size=size)
    return pd.DataFrame(
        {
            "version": pd.Categorical(rng.choice(versions, size=size)),
            "ts": np.sort(rng.uniform(0, 3600, size)),
            "prediction": pd.Categorical(rng.choice(["0", "1"], size=size)),
            "score": rng.uniform(size=size),
            PREFIX + "age": age,
            PREFIX + "plan": pd.Categorical(plan, categories=sorted({"basic", "pro"})),
            "label": pd.Categorical(label),
            "label_received_at": rng.uniform(3600, 7200, size),
            "class_scores": np.array([None] * size, dtype=object),
        }
    )


def assert_same_rows(one: Rows, two: Rows) -> None:
    assert list(one.features.columns) == list(two.features.columns)
    assert list(one.features.dtypes) == list(two.features.dtypes)
    for name in one.features.columns:
        left, right = one.features[name].to_numpy(), two.features[name].to_numpy()
        if left.dtype == np.float64:
            assert left.tobytes() == right.tobytes()
        else:
            assert left.tolist() == right.tolist()
    for field in fields(Rows):
        if field.name in ("features", "_coded"):
            continue
        left, right = getattr(one, field.name), getattr(two, field.name)
        if isinstance(left, np.ndarray):
            assert left.dtype == right.dtype, field.name
            if left.dtype == np.float64:
                assert left.tobytes() == right.tobytes(), field.name
            else:
                assert left.tolist() == right.tolist(), field.name
        else:
            assert left == right, field.name


@pytest.mark.parametrize("versions", [["v1"], ["v1", "v2"], ["a", "b", "c"]])
def test_the_split_gives_each_version_the_rows_and_order_of_selecting_it(
    versions: list[str],
) -> None:
    expected = rows_from_frame(window(3000, versions, seed=1), KINDS, prefix=PREFIX).by_version({})
    frame = window(3000, versions, seed=1)
    split = rows_by_version(frame, KINDS, prefix=PREFIX)
    assert sorted(split) == sorted(expected) == sorted(versions)
    for version, rows in expected.items():
        assert len(split[version]) == len(rows) > 0
        assert_same_rows(split[version], rows)
    # The frame gave up its columns as they were split.
    assert frame.columns.empty


def test_a_window_without_rows_or_versions_splits_as_before() -> None:
    for frame in (window(0, ["v1"], seed=2), window(50, ["v1"], seed=2).drop(columns="version")):
        expected = rows_from_frame(frame, KINDS, prefix=PREFIX).by_version({})
        split = rows_by_version(frame.copy(), KINDS, prefix=PREFIX)
        assert sorted(split) == sorted(expected)
        for version, rows in expected.items():
            assert_same_rows(split[version], rows)


def test_slices_join_into_the_frame_pandas_concatenates_with_categories_united() -> None:
    # Each slice has its own categories (one without "pro" at all), as separate reads give.
    slices = [window(500, ["v1", "v2"], seed=seed) for seed in (3, 4, 5)]
    slices[1][PREFIX + "plan"] = pd.Categorical(["basic"] * 500, categories=["basic"])
    expected = pd.concat([part.copy() for part in slices], ignore_index=True)
    joined = concat_frames(slices)
    assert all(part.columns.empty for part in slices)
    assert list(joined.columns) == list(expected.columns)
    for name in joined.columns:
        got, want = joined[name], expected[name]
        if isinstance(want.dtype, pd.CategoricalDtype) or isinstance(
            got.dtype, pd.CategoricalDtype
        ):
            assert isinstance(got.dtype, pd.CategoricalDtype)
            assert list(got.cat.categories) == sorted(got.cat.categories)
            assert got.astype(object).tolist() == want.astype(object).tolist()
        elif got.dtype == np.float64:
            assert got.to_numpy().tobytes() == want.to_numpy().tobytes()
        else:
            assert got.tolist() == want.tolist()
