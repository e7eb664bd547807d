"""DLE: hand-checked sampling errors and bands, NannyML 0.13's own estimates (LightGBM there,
scikit-learn here), an estimate that follows the realized error when inputs shift, and the
install hint when scikit-learn is missing."""

from __future__ import annotations

import math
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from detectors.stats import dle
from detectors.stats.bands import chunk_bounds, reference_band
from modeltap.errors import MissingExtraError
from tests.detectors.anchors import analysis_chunks, nannyml


def regression_rows(
    rng: np.random.Generator, size: int, shift: float = 0.0
) -> tuple[np.ndarray, ...]:
    """A model that misses x1² and whose noise grows with |x0|: its error depends on the inputs."""
    x = rng.normal(0.0, 1.0, (size, 3))
    x[:, 0] += shift
    labels = x[:, 0] + 0.5 * x[:, 1] ** 2 + rng.normal(0.0, 1.0, size) * (0.5 + np.abs(x[:, 0]))
    predictions = x[:, 0] + 0.5
    return x, predictions, labels


def test_sampling_errors_and_bands_by_hand() -> None:
    x, predictions, labels = regression_rows(np.random.default_rng(0), 2000)
    profile = dle.fit(x, predictions, labels, chunk_size=500)
    errors = labels - predictions
    assert profile.sampling_error("mae", 100) == pytest.approx(np.std(np.abs(errors)) / 10)
    squared = errors**2
    expected = math.sqrt(np.var(squared) / (4 * 100 * np.mean(squared)))
    assert profile.sampling_error("rmse", 100) == pytest.approx(expected)
    chunks = [np.sqrt(np.mean(squared[a:b])) for a, b in chunk_bounds(2000, 500)]
    assert profile.bands["rmse"] == reference_band(chunks, lower_limit=0.0)
    assert profile.bands["rmse"].lower == pytest.approx(np.mean(chunks) - 3 * np.std(chunks))


def test_reference_estimates_are_near_its_realized_errors() -> None:
    x, predictions, labels = regression_rows(np.random.default_rng(1), 4000)
    profile = dle.fit(x, predictions, labels)
    estimates = dle.estimate(profile, x, predictions)
    truth = dle.realized(labels, predictions)
    for name in dle.METRICS:
        assert estimates[name].direction == "higher"
        assert estimates[name].value == pytest.approx(truth[name], rel=0.05)


def test_estimate_tracks_realized_error_under_covariate_shift() -> None:
    rng = np.random.default_rng(2)
    profile = dle.fit(*regression_rows(rng, 20_000))
    estimated, actual = [], []
    for shift in (0.0, 0.5, 1.0, 1.5):
        x, predictions, labels = regression_rows(rng, 2000, shift=shift)
        mae = dle.estimate(profile, x, predictions)["mae"]
        truth = dle.realized(labels, predictions)["mae"]
        assert mae.value is not None
        assert mae.sampling_error is not None
        # The reference's spread of errors sets the sampling error; with shifted inputs the
        # errors spread more, so allow 5 of them (the agreement is typically within 1).
        assert abs(mae.value - truth) < 5 * mae.sampling_error, (shift, mae.value, truth)
        estimated.append(mae.value)
        actual.append(truth)
    assert np.all(np.diff(actual) > 0)
    assert np.all(np.diff(estimated) > 0)
    assert estimated[-1] > profile.bands["mae"].upper  # type: ignore[operator]
    assert dle.estimate(profile, *regression_rows(rng, 2000, shift=1.5)[:2])["mae"].alert


def test_profile_pickles() -> None:
    x, predictions, labels = regression_rows(np.random.default_rng(3), 1000)
    profile = dle.fit(x, predictions, labels)
    restored = pickle.loads(pickle.dumps(profile))
    assert dle.estimate(restored, x, predictions) == dle.estimate(profile, x, predictions)


def test_wrong_feature_count_is_refused() -> None:
    x, predictions, labels = regression_rows(np.random.default_rng(4), 200)
    profile = dle.fit(x, predictions, labels)
    with pytest.raises(ValueError, match="fitted on 3 features"):
        dle.estimate(profile, x[:, :2], predictions)


def test_missing_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    x, predictions, labels = regression_rows(np.random.default_rng(5), 100)
    with pytest.raises(MissingExtraError, match=r"pip install 'modeltap\[estimation\]'"):
        dle.fit(x, predictions, labels)


def test_agrees_with_nannyml(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ref_x, ref_predictions, ref_labels = regression_rows(rng, 10_000)
    cur_x, cur_predictions, _ = regression_rows(rng, 10_000, shift=1.0)
    answer = nannyml(
        "dle",
        tmp_path,
        ref_x=ref_x,
        ref_pred=ref_predictions,
        ref_label=ref_labels,
        cur_x=cur_x,
        cur_pred=cur_predictions,
        chunk_size=1000,
    )
    profile = dle.fit(ref_x, ref_predictions, ref_labels, chunk_size=1000)
    chunks = analysis_chunks(answer)
    assert len(chunks) == 10
    for index, chunk in enumerate(chunks):
        rows = slice(index * 1000, (index + 1) * 1000)
        ours = dle.estimate(profile, cur_x[rows], cur_predictions[rows])
        for name in dle.METRICS:
            estimate = ours[name]
            assert estimate.value is not None
            assert estimate.sampling_error is not None
            # Sampling errors and bands come from the reference alone: the same formulas.
            assert estimate.sampling_error == pytest.approx(
                chunk[f"{name}.sampling_error"], rel=1e-9
            )
            assert estimate.band.lower == pytest.approx(chunk[f"{name}.lower_threshold"], rel=1e-9)
            assert estimate.band.upper == pytest.approx(chunk[f"{name}.upper_threshold"], rel=1e-9)
            # The estimates come from two boosting libraries with the same settings (LightGBM's
            # LGBMRegressor defaults there, scikit-learn's HistGradientBoostingRegressor here),
            # which bin and split differently: they differ by up to about 1 % (0.8 % seen).
            # Half the estimate's own sampling error is the bar: a gap smaller than the noise
            # any window carries changes no conclusion.
            gap = abs(estimate.value - chunk[f"{name}.value"])
            assert gap < 0.5 * estimate.sampling_error, (index, name, gap)
            assert gap < 0.02 * chunk[f"{name}.value"], (index, name, gap)
