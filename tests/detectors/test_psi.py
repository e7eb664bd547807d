"""PSI: quantile bins fixed at fit time (checked against scipy), and Evidently's mode."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors.rows import category_counts
from detectors.stats.psi import (
    PSI_EPSILON,
    bin_counts,
    categorical_shares,
    psi,
    psi_evidently_categorical,
    psi_evidently_numerical,
    quantile_edges,
)
from tests.detectors.known import evidently_score


def test_psi_is_the_symmetrised_kl_divergence_from_scipy() -> None:
    expected = np.array([0.1, 0.2, 0.3, 0.4])
    actual = np.array([0.25, 0.25, 0.25, 0.25])
    kl_both_ways = stats.entropy(actual, expected) + stats.entropy(expected, actual)
    assert psi(expected, actual) == pytest.approx(kl_both_ways, abs=1e-12)


def test_psi_by_hand() -> None:
    # (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5)
    by_hand = -0.25 * np.log(0.5) + 0.25 * np.log(1.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(by_hand, abs=1e-15)


def test_empty_bins_count_as_epsilon() -> None:
    value = psi(np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.4, 0.1]))
    by_hand = (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.1 - PSI_EPSILON) * np.log(0.1 / PSI_EPSILON)
    assert value == pytest.approx(by_hand, abs=1e-15)


def test_quantile_edges_are_numpy_quantiles_and_counts_follow_them() -> None:
    rng = np.random.default_rng(0)
    values = np.sort(rng.gamma(2.0, size=5000))
    edges = quantile_edges(values, 10)
    assert edges.tolist() == np.quantile(values, np.arange(1, 10) / 10).tolist()
    counts = bin_counts(values, edges)
    # Bins are [e_i, e_i+1) with open ends: np.histogram over the same edges (its last bin
    # is closed, so nudge the top edge above the maximum) must agree.
    closed = np.concatenate(([-np.inf], edges, [np.inf]))
    assert counts.tolist() == np.histogram(values, closed)[0].tolist()
    assert counts.sum() == values.size
    assert np.all(np.abs(counts - 500) <= 1)


def test_tied_quantiles_merge_bins() -> None:
    values = np.sort(np.array([0.0] * 70 + list(np.linspace(1, 2, 30))))
    edges = quantile_edges(values, 10)
    assert edges[0] == 0.0
    assert len(edges) == len(set(edges.tolist())) < 9


def test_identical_data_has_zero_psi_and_a_shift_a_large_one() -> None:
    rng = np.random.default_rng(2)
    reference = np.sort(rng.normal(size=10_000))
    edges = quantile_edges(reference, 10)
    shares = bin_counts(reference, edges) / reference.size
    assert psi(shares, shares) == 0.0
    shifted = np.sort(rng.normal(1.0, 1.0, size=10_000))
    assert psi(shares, bin_counts(shifted, edges) / shifted.size) > 0.5


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 100), min_size=2, max_size=12),
    st.lists(st.integers(0, 100), min_size=2, max_size=12),
)
def test_psi_is_non_negative_and_symmetric(a: list[int], b: list[int]) -> None:
    size = min(len(a), len(b))
    first = np.array(a[:size], dtype=float)
    second = np.array(b[:size], dtype=float)
    if first.sum() == 0 or second.sum() == 0:
        return
    p, q = first / first.sum(), second / second.sum()
    assert psi(p, q) >= 0
    assert psi(p, q) == pytest.approx(psi(q, p), abs=1e-12)


def test_unseen_categories_share_one_bin() -> None:
    reference = category_counts(np.array(["a", "a", "b"], dtype=object))
    current = category_counts(np.array(["a", "c", "d", "d"], dtype=object))
    expected, actual = categorical_shares(reference, current)
    assert expected.tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert actual.tolist() == pytest.approx([0.25, 0.0, 0.75])


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        ("normal", "shifted"),  # Sturges bins over both samples
        ("normal", "normal"),
        ("few", "few_shifted"),  # at most 20 distinct values: one bin per value
        ("normal", "far"),  # empty bins on both sides: Evidently's zero replacement
    ],
)
def test_evidently_mode_reproduces_evidently_numbers(reference: str, current: str) -> None:
    rng = np.random.default_rng(5)
    data = {
        "normal": rng.normal(size=3000),
        "shifted": rng.normal(0.3, 1.2, size=1200),
        "few": rng.integers(0, 12, size=2000).astype(float),
        "few_shifted": rng.integers(3, 15, size=900).astype(float),
        "far": rng.normal(8.0, 0.1, size=700),
    }
    ref, cur = data[reference], data[current]
    expected, _ = evidently_score("psi", ref, cur, "numerical")
    assert psi_evidently_numerical(np.sort(ref), np.sort(cur)) == pytest.approx(
        expected, rel=1e-12, abs=1e-15
    )


def test_evidently_mode_reproduces_evidently_for_categories() -> None:
    rng = np.random.default_rng(6)
    ref = rng.choice(list("abcd"), p=[0.4, 0.3, 0.2, 0.1], size=4000)
    cur = rng.choice(list("abcde"), p=[0.2, 0.3, 0.2, 0.2, 0.1], size=1000)
    expected, _ = evidently_score("psi", ref, cur, "categorical")
    ours = psi_evidently_categorical(
        category_counts(pd.Series(ref, dtype=object)), category_counts(pd.Series(cur, dtype=object))
    )
    assert ours == pytest.approx(expected, rel=1e-12)
