"""The registry: one name per test, helpful errors, directions and thresholds recorded."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.stats.reference import fit_numerical
from detectors.stats.registry import (
    CategoricalInput,
    Computed,
    NumericalInput,
    Options,
    Registry,
    StatTest,
    TestInput,
    default_registry,
)
from detectors.stats.samples import CategoryCounts, NumericalSample
from modeltap.errors import InputError


def numerical(reference: list[float], current: list[float]) -> NumericalInput:
    ref = fit_numerical(np.array(reference), violations=0, bins=4, sample_size=1000)
    return NumericalInput(ref, NumericalSample(current))


def test_registering_a_name_twice_is_refused() -> None:
    registry = default_registry()
    with pytest.raises(ValueError, match="'ks' is already registered"):
        registry.register(registry.get("ks"))


def test_an_unknown_name_lists_what_exists() -> None:
    with pytest.raises(InputError) as caught:
        default_registry().get("kolmogorov")
    assert str(caught.value) == (
        "unknown drift test 'kolmogorov'; registered: chisquare, jensenshannon, ks, psi, "
        "wasserstein, z"
    )


def test_a_test_for_the_wrong_kind_names_the_right_ones() -> None:
    with pytest.raises(InputError, match="for those use one of: chisquare, jensenshannon, psi, z"):
        default_registry().get("ks", "categorical")


def test_a_fresh_registry_holds_only_what_was_registered() -> None:
    ks = default_registry().get("ks")
    registry = Registry([ks])
    assert registry.names() == ["ks"]
    assert "psi" not in registry
    assert [test.name for test in registry] == ["ks"]


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("ks", "lower"),
        ("chisquare", "lower"),
        ("z", "lower"),
        ("psi", "higher"),
        ("jensenshannon", "higher"),
        ("wasserstein", "higher"),
    ],
)
def test_every_test_records_its_direction(name: str, direction: str) -> None:
    assert default_registry().get(name).direction == direction


def test_small_samples_give_insufficient_data_not_a_number() -> None:
    result = (
        default_registry()
        .get("ks")
        .run(numerical([1.0, 2.0, 3.0], [1.0, 2.0]), min_reference_size=3, min_current_size=3)
    )
    assert result.status == "insufficient_data"
    assert result.score is None
    assert not result.drifted
    assert (result.reference_size, result.current_size) == (3, 2)
    assert result.direction == "lower"


def test_results_carry_sizes_threshold_and_verdict() -> None:
    rng = np.random.default_rng(0)
    data = numerical(list(rng.normal(size=500)), list(rng.normal(2.0, 1.0, size=300)))
    result = default_registry().get("ks").run(data, threshold=0.01)
    assert result.status == "ok"
    assert result.threshold == 0.01
    assert result.drifted
    assert (result.reference_size, result.current_size) == (500, 300)
    assert result.statistic is not None
    assert result.details == {"method": "exact"}


def test_threshold_equality_follows_evidently_per_test() -> None:
    # KS and distances drift at the threshold itself (<=, >=); chi-square and z do not (<).
    custom = Registry(
        [
            StatTest("at", frozenset({"categorical"}), "higher", 0.5, True, _half, "x"),
            StatTest("strict", frozenset({"categorical"}), "lower", 0.5, False, _half, "x"),
        ]
    )
    data = CategoricalInput(
        CategoryCounts.from_mapping({"a": 1}), CategoryCounts.from_mapping({"a": 1})
    )
    assert custom.get("at").run(data).drifted
    assert not custom.get("strict").run(data).drifted


def _half(_data: TestInput, _options: Options) -> Computed:
    return Computed(0.5)
