"""Wasserstein against scipy and Evidently; Jensen-Shannon against scipy and Evidently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from detectors.rows import category_counts
from detectors.stats.binning import evidently_numerical, sorted_histogram
from detectors.stats.distances import (
    jensenshannon_categorical,
    jensenshannon_numerical,
    wasserstein,
    wasserstein_norm,
)
from tests.detectors.known import evidently_score


@pytest.mark.parametrize(("n1", "n2"), [(3, 3), (100, 37), (20_000, 200_000)])
def test_wasserstein_equals_scipy(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1)
    a, b = rng.lognormal(size=n1), rng.lognormal(0.1, 1.0, size=n2)
    expected = stats.wasserstein_distance(a, b)
    assert wasserstein(np.sort(a), np.sort(b)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(-50, 50), min_size=1, max_size=40),
    st.lists(st.integers(-50, 50), min_size=1, max_size=40),
)
def test_wasserstein_equals_scipy_with_ties(a: list[int], b: list[int]) -> None:
    x, y = np.array(a, dtype=float), np.array(b, dtype=float)
    expected = stats.wasserstein_distance(x, y)
    assert wasserstein(np.sort(x), np.sort(y)) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_normalised_wasserstein_reproduces_evidently() -> None:
    rng = np.random.default_rng(9)
    ref, cur = rng.normal(10, 3, size=5000), rng.normal(10.5, 3, size=2000)
    expected, drifted = evidently_score("wasserstein", ref, cur, "numerical")
    ours = wasserstein_norm(np.sort(ref), np.sort(cur), float(np.std(ref)))
    assert ours == pytest.approx(expected, rel=1e-12)
    assert drifted == (ours >= 0.1)


def test_constant_reference_uses_the_floor() -> None:
    ref = np.full(100, 2.0)
    cur = np.full(50, 2.5)
    expected, _ = evidently_score("wasserstein", ref, cur, "numerical")
    assert wasserstein_norm(ref, cur, 0.0) == pytest.approx(expected) == pytest.approx(500.0)


def test_jensenshannon_is_scipys_over_the_binned_shares() -> None:
    rng = np.random.default_rng(3)
    ref, cur = np.sort(rng.normal(size=4000)), np.sort(rng.normal(0.2, size=3000))
    edges = np.histogram_bin_edges(np.concatenate((ref, cur)), bins="sturges")
    p = np.histogram(ref, edges)[0] / ref.size
    q = np.histogram(cur, edges)[0] / cur.size
    assert sorted_histogram(ref, edges).tolist() == np.histogram(ref, edges)[0].tolist()
    assert evidently_numerical(ref, cur)[0].tolist() == p.tolist()
    assert jensenshannon_numerical(ref, cur) == pytest.approx(
        distance.jensenshannon(p, q), abs=1e-15
    )


@pytest.mark.parametrize("few_values", [False, True])
def test_jensenshannon_reproduces_evidently_numerical(few_values: bool) -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=2500), rng.normal(0.4, 1.1, size=900)
    if few_values:
        ref, cur = np.round(ref), np.round(cur)
    expected, _ = evidently_score("jensenshannon", ref, cur, "numerical")
    assert jensenshannon_numerical(np.sort(ref), np.sort(cur)) == pytest.approx(expected, rel=1e-12)


def test_jensenshannon_reproduces_evidently_categorical() -> None:
    rng = np.random.default_rng(8)
    ref = rng.choice(list("xyz"), p=[0.5, 0.3, 0.2], size=3000)
    cur = rng.choice(list("xyzw"), p=[0.3, 0.3, 0.2, 0.2], size=800)
    expected, drifted = evidently_score("jensenshannon", ref, cur, "categorical")
    ours = jensenshannon_categorical(
        category_counts(pd.Series(ref, dtype=object)), category_counts(pd.Series(cur, dtype=object))
    )
    assert ours == pytest.approx(expected, rel=1e-12)
    assert drifted


def test_identical_samples_are_at_distance_zero() -> None:
    rng = np.random.default_rng(1)
    a = np.sort(rng.normal(size=1000))
    assert wasserstein(a, a) == 0.0
    assert jensenshannon_numerical(a, a) == 0.0
