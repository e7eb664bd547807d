"""Column and dataset drift: reported tests, the flag, Evidently's auto rule and numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from detectors.families.drift import auto_method, dataset_drift, feature_drift
from detectors.rows import category_counts
from detectors.settings import DriftSettings
from detectors.stats.reference import Kind, fit_categorical, fit_numerical
from detectors.stats.registry import default_registry
from detectors.stats.samples import NumericalSample
from tests.detectors.known import DISPLAY_NAMES, evidently_auto

REGISTRY = default_registry()
AUTO = DriftSettings(
    numerical_method="auto",
    categorical_method="auto",
    thresholds={"ks": 0.05, "chisquare": 0.05, "z": 0.05, "jensenshannon": 0.1, "wasserstein": 0.1},
    min_current_size=1,
)


def numerical_drift(reference: Any, current: Any, settings: DriftSettings = AUTO) -> Any:
    fitted = fit_numerical(
        np.asarray(reference, dtype=float), violations=0, bins=10, sample_size=10**6
    )
    return feature_drift("x", fitted, NumericalSample(current), settings, REGISTRY)


def categorical_drift(reference: Any, current: Any, settings: DriftSettings = AUTO) -> Any:
    ref = category_counts(pd.Series(reference, dtype=object))
    fitted = fit_categorical(ref.as_dict(), rows=len(reference), violations=0, max_categories=1000)
    return feature_drift(
        "c", fitted, category_counts(pd.Series(current, dtype=object)), settings, REGISTRY
    )


@pytest.mark.parametrize("reference_size", [200, 1000, 1001, 3000])
@pytest.mark.parametrize("distinct", [1, 2, 3, 5, 6, 40])
@pytest.mark.parametrize("kind", ["numerical", "categorical"])
def test_auto_picks_what_evidently_picks(reference_size: int, distinct: int, kind: Kind) -> None:
    rng = np.random.default_rng(reference_size + distinct)
    values = np.arange(distinct, dtype=float)
    ref = rng.choice(values, size=reference_size)
    cur = rng.choice(values, size=300)
    if kind == "categorical":
        ref, cur = ref.astype(int).astype(str), cur.astype(int).astype(str)
    expected = evidently_auto(ref, cur, kind)
    drift = numerical_drift(ref, cur) if kind == "numerical" else categorical_drift(ref, cur)
    assert drift.flag.test == expected
    assert auto_method(kind, reference_size, len(set(ref) | set(cur))) == expected


def test_numerical_columns_report_ks_and_psi_and_flag_with_the_configured_test() -> None:
    rng = np.random.default_rng(1)
    settings = DriftSettings(numerical_method="wasserstein", min_current_size=1)
    drift = numerical_drift(rng.normal(size=2000), rng.normal(0.5, 1.0, size=800), settings)
    assert [test.test for test in drift.tests] == ["ks", "psi", "wasserstein"]
    assert drift.flag.test == "wasserstein"
    assert drift.flag.drifted


def test_categorical_columns_report_chisquare_and_psi() -> None:
    rng = np.random.default_rng(2)
    ref = rng.choice(list("abc"), size=1000)
    drift = categorical_drift(ref, ref[:400], DriftSettings(min_current_size=1))
    assert [test.test for test in drift.tests] == ["chisquare", "psi"]
    assert drift.flag.test == "psi"


def test_identical_data_never_drifts_and_shifted_data_always_does() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=5000)
    settings = DriftSettings(min_current_size=1)
    same = numerical_drift(ref, ref, settings)
    moved = numerical_drift(ref, ref + 1.0, settings)
    assert not any(test.drifted for test in same.tests)
    assert all(test.drifted for test in moved.tests)


def test_too_small_a_window_is_insufficient_data() -> None:
    drift = numerical_drift(np.arange(500.0), np.arange(20.0), DriftSettings(min_current_size=100))
    assert {test.status for test in drift.tests} == {"insufficient_data"}
    assert dataset_drift([drift], 0.5).share is None


def test_dataset_drift_counts_a_share_equal_to_the_threshold_as_drift() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=3000)
    settings = DriftSettings(min_current_size=1)
    moved = numerical_drift(ref, ref + 2, settings)
    still = numerical_drift(ref, ref, settings)
    summary = dataset_drift([moved, still], 0.5)
    assert (summary.share, summary.drifted, summary.judged) == (0.5, True, 2)
    assert not dataset_drift([moved, still, still], 0.5).drifted


def test_auto_reproduces_evidentlys_data_drift_preset() -> None:
    rng = np.random.default_rng(5)
    size, window = 1500, 700
    reference = pd.DataFrame(
        {
            "wide": rng.normal(size=size),
            "few": rng.integers(0, 4, size=size).astype(float),
            "plan": rng.choice(list("abc"), size=size),
            "flag": rng.choice(["y", "n"], size=size),
        }
    )
    current = pd.DataFrame(
        {
            "wide": rng.normal(0.2, size=window),
            "few": rng.integers(0, 4, size=window).astype(float),
            "plan": rng.choice(list("abcd"), size=window),
            "flag": rng.choice(["y", "n"], p=[0.3, 0.7], size=window),
        }
    )
    definition = DataDefinition(
        numerical_columns=["wide", "few"], categorical_columns=["plan", "flag"]
    )
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    evidently = {}
    share = None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            evidently[config["column"]] = (DISPLAY_NAMES[config["method"]], metric["value"])
        else:
            share = metric["value"]["share"]
    ours = {
        "wide": numerical_drift(reference["wide"], current["wide"]),
        "few": numerical_drift(reference["few"], current["few"]),
        "plan": categorical_drift(reference["plan"], current["plan"]),
        "flag": categorical_drift(reference["flag"], current["flag"]),
    }
    for column, drift in ours.items():
        method, score = evidently[column]
        assert drift.flag.test == method, column
        assert drift.flag.score == pytest.approx(score, rel=1e-9, abs=1e-12), column
    assert dataset_drift(list(ours.values()), 0.5).share == pytest.approx(share)
