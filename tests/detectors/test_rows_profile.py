"""Typing raw columns, and fitting, storing and reading back a reference profile."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.profile import Profile, ProfileSettings, fit_profile
from detectors.rows import (
    Rows,
    category_counts,
    coerce_categorical,
    coerce_numerical,
    typed_features,
)
from detectors.settings import ModelSettings
from detectors.stats.reference import (
    CategoricalReference,
    NumericalReference,
    column_from_json,
    fit_numerical,
)
from modeltap.codec import dumps
from modeltap.errors import InputError
from tests.detectors.traffic import MODEL, config


def test_numerical_coercion_counts_values_that_are_not_numbers() -> None:
    raw = pd.Series(
        [1, "2.5", "abc", None, float("nan"), True, {"x": 1}, float("inf")], dtype=object
    )
    values, violations = coerce_numerical(raw)
    assert values[:2].tolist() == [1.0, 2.5]
    assert np.isnan(values[2:]).all()
    # "abc", True and {"x": 1} are present but not numbers; None and NaN are missing;
    # infinity is a number but not a usable one, so it counts as missing, as Evidently drops it.
    assert violations == 3


def test_categorical_coercion_writes_categories_as_json_does() -> None:
    raw = pd.Series(["pro", 1, 2.5, True, None, [1, 2], float("nan")], dtype=object)
    values, violations = coerce_categorical(raw)
    assert values.tolist() == ["pro", "1", "2.5", "true", None, None, None]
    assert violations == 1


def test_typed_features_treats_absent_columns_as_missing() -> None:
    frame = pd.DataFrame({"age": [30, 40]})
    typed, violations = typed_features(frame, {"age": "numerical", "plan": "categorical"})
    assert typed["age"].tolist() == [30.0, 40.0]
    assert typed["plan"].tolist() == [None, None]
    assert violations == {"age": 0, "plan": 0}


def sample_rows(size: int, seed: int = 0) -> Rows:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(
        {
            "age": np.where(rng.uniform(size=size) < 0.1, np.nan, rng.normal(40, 10, size=size)),
            "plan": rng.choice(np.array(["basic", "pro", "enterprise"], dtype=object), size=size),
        }
    )
    return Rows(
        features,
        {"age": "numerical", "plan": "categorical"},
        violations={"age": 2, "plan": 0},
        prediction=rng.choice(np.array(["0", "1"], dtype=object), size=size),
        score=rng.uniform(size=size),
    )


def test_fitted_profile_keeps_what_scoring_needs() -> None:
    rows = sample_rows(50_000)
    profile = fit_profile(
        rows,
        prediction_kind="categorical",
        segment_by="plan",
        settings=ProfileSettings(sample_size=1000, segment_sample_size=200),
    )
    age = profile.columns["age"]
    assert isinstance(age, NumericalReference)
    finite = rows.numbers("age")[np.isfinite(rows.numbers("age"))]
    assert age.rows == 50_000
    assert age.violations == 2
    assert age.missing == 50_000 - finite.size - 2
    assert (age.minimum, age.maximum) == (finite.min(), finite.max())
    assert age.sample.size == 1000
    assert np.all(np.diff(age.sample) >= 0)
    assert age.shares.sum() == pytest.approx(1.0)
    plan = profile.columns["plan"]
    assert isinstance(plan, CategoricalReference)
    assert plan.counts.size == 50_000
    assert set(profile.segments) == {"basic", "pro", "enterprise"}
    segment_age = profile.segments["pro"].columns["age"]
    assert isinstance(segment_age, NumericalReference)
    assert segment_age.sample.size == 200
    assert profile.prediction is not None
    assert profile.score is not None


def test_profile_survives_a_json_round_trip_exactly() -> None:
    profile = fit_profile(sample_rows(3000), prediction_kind="categorical", segment_by="plan")
    text = json.dumps(profile.to_json())
    again = Profile.from_json(json.loads(text))
    assert again.to_json() == profile.to_json()
    age, back = profile.columns["age"], again.columns["age"]
    assert isinstance(age, NumericalReference)
    assert isinstance(back, NumericalReference)
    assert back.sample.tobytes() == age.sample.tobytes()


def test_a_small_reference_keeps_every_value_and_is_deterministic() -> None:
    rows = sample_rows(500)
    first = fit_profile(rows, settings=ProfileSettings(sample_size=100))
    second = fit_profile(rows, settings=ProfileSettings(sample_size=100))
    assert first.to_json() == second.to_json()
    everything = fit_profile(rows, settings=ProfileSettings(sample_size=10_000))
    age = everything.columns["age"]
    assert isinstance(age, NumericalReference)
    assert age.sample.size == age.size


def test_a_profile_of_another_format_is_refused() -> None:
    with pytest.raises(InputError, match="fit it again"):
        Profile.from_json({"format": 99})


def test_a_damaged_stored_profile_says_to_fit_it_again() -> None:
    stored = fit_profile(sample_rows(300)).to_json()
    del stored["columns"]
    with pytest.raises(InputError, match=r"cannot be read \(KeyError: 'columns'\); fit it again"):
        Profile.from_json(stored)


def test_a_segment_without_values_of_a_feature_reads_back() -> None:
    # A feature with no usable value stores NaN statistics, which JSON holds as null.
    column = fit_numerical(np.array([np.nan, np.nan]), violations=0, bins=2, sample_size=10)
    back = column_from_json(json.loads(dumps(column.to_json())))
    assert back.size == 0
    assert isinstance(back, NumericalReference)
    assert math.isnan(back.mean)


def test_categories_beyond_the_cap_are_summed_as_other() -> None:
    rows = Rows(
        pd.DataFrame({"c": np.array(list("aaaabbbcd"), dtype=object)}), {"c": "categorical"}
    )
    profile = fit_profile(rows, settings=ProfileSettings(max_categories=2))
    column = profile.columns["c"]
    assert isinstance(column, CategoricalReference)
    assert column.counts.as_dict() == {"a": 4, "b": 3}
    assert column.other == 2


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["basic", "pro", "ent", "x", None]), min_size=0, max_size=60),
    st.integers(0, 2**32 - 1),
)
def test_counts_from_a_categorical_column_equal_counting_its_objects(
    values: list[str | None], seed: int
) -> None:
    # The store reads categories as a pandas categorical; counting its codes must give what
    # counting the values as objects gives, in the same order (first occurrence), masked too.
    column = pd.Series(pd.Categorical(values, categories=["x", "pro", "basic", "ent", "unused"]))
    mask = np.random.default_rng(seed).uniform(size=len(values)) < 0.5
    for chosen in (None, mask):
        objects = column.to_numpy(dtype=object)
        expected = counted_by_pandas(objects if chosen is None else objects[chosen])
        for ours in (category_counts(column, chosen), category_counts(objects, chosen)):
            assert list(zip(ours.keys, ours.counts.tolist(), strict=True)) == expected


def counted_by_pandas(values: np.ndarray) -> list[tuple[object, int]]:
    """What the counts must be: pandas' own ``value_counts``, first occurrence first."""
    counted = pd.Series(values, dtype=object).value_counts(dropna=True, sort=False)
    return [(key, int(count)) for key, count in counted.items()]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["basic", "pro", "ent", "x", None]), min_size=0, max_size=60),
    st.integers(0, 2**32 - 1),
    st.integers(1, 4),
)
def test_rows_code_a_column_once_and_count_and_segment_it_as_pandas_does(
    values: list[str | None], seed: int, limit: int
) -> None:
    objects = np.array(values, dtype=object)
    predicted = np.random.default_rng(seed).choice(
        np.array(["0", "1", None], dtype=object), len(values)
    )
    rows = Rows(pd.DataFrame({"plan": objects}), {"plan": "categorical"}, prediction=predicted)
    mask = np.random.default_rng(seed + 1).uniform(size=len(values)) < 0.5
    for chosen in (None, mask):
        # Asked twice: the second answer comes from the codes kept by the first.
        for _ in range(2):
            picked = objects if chosen is None else objects[chosen]
            counts = rows.counts("plan", chosen)
            assert list(zip(counts.keys, counts.counts.tolist(), strict=True)) == (
                counted_by_pandas(picked)
            )
            outputs = rows.prediction_counts(chosen)
            picked = predicted if chosen is None else predicted[chosen]
            assert list(zip(outputs.keys, outputs.counts.tolist(), strict=True)) == (
                counted_by_pandas(picked)
            )
    # Segments: the most frequent values, ties by their text, each with its rows.
    ranked = sorted(counted_by_pandas(objects), key=lambda item: (-item[1], str(item[0])))
    segments = rows.segments("plan", limit)
    assert [value for value, _ in segments] == [str(value) for value, _ in ranked[:limit]]
    for value, rows_of in segments:
        assert rows_of.tolist() == (objects == value).tolist()
    # Selected rows code their own column, not the codes kept for every row.
    selected = rows.select(mask).counts("plan")
    assert list(zip(selected.keys, selected.counts.tolist(), strict=True)) == (
        counted_by_pandas(objects[mask])
    )


@pytest.mark.parametrize(
    "raw",
    [
        ["basic", None, "pro", math.nan, pd.NA],  # text with every kind of missing
        ["basic", 3, True, 2.5, None],  # mixed: read value by value
        [],
    ],
)
def test_text_columns_read_at_once_equal_reading_them_value_by_value(raw: list[object]) -> None:
    # Object columns of strings (what Parquet gives) skip the per-value look; the answer must
    # be what the per-value look gives, missing values included.
    column = pd.Series(raw, dtype=object)
    values, violations = coerce_categorical(column)
    expected = [coerce_categorical(pd.Series([item, [1]], dtype=object))[0][0] for item in raw]
    assert values.tolist() == expected
    assert violations == 0


def test_a_profile_fitted_without_settings_keeps_what_the_default_configuration_says() -> None:
    # fit_profile's defaults (the bench, a profile read without settings) and a default
    # configuration must not drift apart: the sample size once had to be changed in both.
    from_config = ModelSettings.from_config(config(), MODEL).profile
    assert ProfileSettings() == from_config
    assert from_config.sample_size == 20_000  # the documented default, above scipy's exact KS
