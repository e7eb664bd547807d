"""The estimation and multivariate families over arrays: fitted once, stored as JSON, scored."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.ensemble import HistGradientBoostingRegressor

from detectors import fitting
from detectors.emit import Scope
from detectors.evaluate import evaluate
from detectors.profile import Profile
from detectors.rows import Rows
from detectors.settings import ModelSettings
from detectors.stats import dle, multivariate
from detectors.stats.boosting import Forest
from detectors.windows import Window
from exporters.metrics import samples
from modeltap.config import MonitorConfig
from modeltap.schema import DetectorResult, LatestValue

T0 = datetime(2026, 11, 25, tzinfo=UTC)
SCOPE = Scope("m", "", Window(T0, T0 + timedelta(hours=1)), T0)


def settings(task: str, **detectors: object) -> ModelSettings:
    config = MonitorConfig.model_validate(
        {
            "models": [
                {
                    "name": "m",
                    "task": task,
                    "features": [{"name": f"x{i}", "type": "numerical"} for i in range(3)],
                }
            ],
            "detectors": detectors,
        }
    )
    return ModelSettings.from_config(config, "m")


def correlated(size: int, seed: int, *, broken: bool = False) -> pd.DataFrame:
    """x1 follows x0 closely; ``broken`` shuffles x1, leaving each column's distribution."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=size)
    x1 = x0 + rng.normal(scale=0.3, size=size)
    if broken:
        x1 = rng.permutation(x1)
    return pd.DataFrame({"x0": x0, "x1": x1, "x2": rng.normal(size=size)})


def stored(model: ModelSettings, frame: pd.DataFrame) -> Profile:
    profile = fitting.fit_rows(model, fitting.rows_from_table(model, frame))
    # Through JSON, as the runner reads it back from the store.
    return Profile.from_json(profile.to_json())


def score(
    model: ModelSettings, frame: pd.DataFrame, profile: Profile, family: str
) -> dict[str, DetectorResult]:
    found = evaluate(
        model,
        SCOPE,
        detectors=[family],
        rows={"": fitting.rows_from_table(model, frame)},
        profiles={"": profile},
    )
    return {r.detector: r for r in found}


def test_a_broken_correlation_raises_the_reconstruction_error_not_the_marginals() -> None:
    model = settings("regression", estimation={"enabled": False})
    profile = stored(model, correlated(5000, 1))
    same = score(model, correlated(2000, 2), profile, "multivariate")["reconstruction_error"]
    broken = score(model, correlated(2000, 3, broken=True), profile, "multivariate")
    moved = broken["reconstruction_error"]
    assert profile.estimators is not None
    assert profile.estimators.reconstruction is not None
    band = profile.estimators.reconstruction.band
    assert (same.alert, moved.alert, moved.direction) == (False, True, "higher")
    assert moved.threshold == band.upper
    assert same.score is not None
    assert moved.score is not None
    assert moved.score > 1.5 * same.score
    # Each column alone still matches: the per-feature drift flags stay down.
    drift = score(model, correlated(2000, 3, broken=True), profile, "drift")
    assert not drift["dataset_drift"].alert


def test_a_configured_threshold_replaces_the_band() -> None:
    model = settings(
        "regression", estimation={"enabled": False}, multivariate={"reconstruction_threshold": 5.0}
    )
    profile = stored(model, correlated(5000, 1))
    row = score(model, correlated(2000, 3, broken=True), profile, "multivariate")
    result = row["reconstruction_error"]
    assert (result.threshold, result.alert) == (5.0, False)
    assert result.details["threshold_source"] == "configured"


def test_the_domain_classifier_tells_a_moved_window_from_the_reference() -> None:
    model = settings("regression", estimation={"enabled": False}, multivariate={
        "reconstruction": False, "domain_classifier": True})  # fmt: skip
    profile = stored(model, correlated(3000, 1))
    moved = correlated(1000, 4)
    moved["x2"] += 1.0
    same = score(model, correlated(1000, 5), profile, "multivariate")["domain_classifier"]
    shifted = score(model, moved, profile, "multivariate")["domain_classifier"]
    assert (same.alert, shifted.alert) == (False, True)
    assert shifted.score is not None
    assert shifted.score > 0.7
    assert shifted.threshold == 0.55


def regression_frame(size: int, seed: int, *, far: bool = False) -> pd.DataFrame:
    """A model right on small x0 and wrong on large |x0|: an error that the loss model learns.
    ``far`` keeps only rows with |x0| > 1, a covariate shift inside the reference's range."""
    rng = np.random.default_rng(seed + 1000)  # not the features' stream: independent noise
    frame = correlated(size * 6 if far else size, seed)
    if far:
        frame = frame[frame["x0"].abs() > 1].head(size).reset_index(drop=True)
    truth = 2 * frame["x0"] + rng.normal(scale=0.1 + np.abs(frame["x0"]), size=size)
    return frame.assign(prediction=2 * frame["x0"], label=truth)


def test_dle_estimates_a_larger_error_where_the_model_is_worse() -> None:
    model = settings("regression", multivariate={"reconstruction": False})
    profile = stored(model, regression_frame(5000, 1))
    assert profile.estimators is not None
    assert profile.estimators.dle is not None
    calm = score(model, regression_frame(2000, 2).drop(columns="label"), profile, "estimation")
    worse = score(model, regression_frame(2000, 3, far=True), profile, "estimation")
    assert calm["estimated_mae"].alert is False
    assert worse["estimated_mae"].alert is True
    assert worse["estimated_mae"].direction == "higher"
    estimated, baseline = worse["estimated_mae"].score, calm["estimated_mae"].score
    assert estimated is not None
    assert baseline is not None
    # sqrt(2/pi) (0.1 + E|x0|): about 0.72 over all rows, 1.29 over |x0| > 1.
    assert estimated > 1.5 * baseline
    # With labels, the realized MAE is beside the estimate, and near it.
    realized = worse["realized_mae"].score
    assert realized is not None
    assert abs(estimated - realized) < 0.25 * realized
    assert "realized_mae" not in calm


def test_the_stored_trees_predict_what_scikit_learn_predicts() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3000, 4))
    features[::7, 1] = np.nan
    target = features[:, 0] ** 2 + np.nan_to_num(features[:, 1])
    model = HistGradientBoostingRegressor(**dle.LOSS_MODEL, random_state=0).fit(features, target)
    window = rng.normal(size=(1000, 4))
    window[::3, 2] = np.nan
    forest = Forest.from_json(Forest.from_model(model).to_json())
    np.testing.assert_allclose(forest.predict(window), model.predict(window), rtol=0, atol=1e-12)


def test_a_classifier_without_positive_class_or_scores_says_why() -> None:
    model = settings("classification")
    frame = correlated(500, 1).assign(prediction=1, label=0)
    profile = stored(model, frame)
    row = score(model, frame, profile, "estimation")["estimated_accuracy"]
    assert row.status == "insufficient_data"
    assert "positive_class" in row.details["reason"]


def test_an_old_profile_without_estimators_asks_for_a_refit() -> None:
    model = settings("regression")
    data = stored(model, regression_frame(500, 1)).to_json()
    data.pop("estimators")
    rows = {"": fitting.rows_from_table(model, regression_frame(500, 2))}
    found = evaluate(model, SCOPE, detectors=["estimation"], rows=rows,
                     profiles={"": Profile.from_json(data)})  # fmt: skip
    assert [(r.detector, r.status) for r in found] == [("estimated_mae", "insufficient_data")]
    assert "fit it again" in found[0].details["reason"]


def test_unknown_or_out_of_range_thresholds_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown estimated metric acuracy"):
        MonitorConfig.model_validate({"detectors": {"estimation": {"thresholds": {"acuracy": 1}}}})
    with pytest.raises(ValidationError, match="check accuracy"):
        MonitorConfig.model_validate({"detectors": {"estimation": {"thresholds": {"accuracy": 2}}}})


def test_each_result_becomes_its_series() -> None:
    def latest(detector: str, threshold: float | None = 0.7) -> list[tuple[str, Any, float]]:
        value = LatestValue("m", "v1", detector, "", T0, 0.6, True, threshold=threshold)
        return [(family.name, labels, number) for family, labels, number in samples(value)]

    assert latest("estimated_accuracy") == [
        ("modeltap_performance_estimated_score", ("m", "v1", "accuracy", "estimated"), 0.6),
        ("modeltap_performance_estimated_alert", ("m", "v1", "accuracy", "estimated"), 1.0),
        ("modeltap_performance_estimated_threshold", ("m", "v1", "accuracy"), 0.7),
    ]
    # The realized value shares the estimate's threshold, published once.
    assert [name for name, _, _ in latest("realized_accuracy")] == [
        "modeltap_performance_estimated_score",
        "modeltap_performance_estimated_alert",
    ]
    assert latest("estimated_rmse", None)[0][0] == "modeltap_performance_estimated_error"
    assert latest("reconstruction_error") == [
        ("modeltap_multivariate_drift_score", ("m", "v1", "reconstruction_error"), 0.6),
        ("modeltap_multivariate_drifted", ("m", "v1", "reconstruction_error"), 1.0),
        ("modeltap_multivariate_drift_threshold", ("m", "v1", "reconstruction_error"), 0.7),
    ]


def test_without_a_profile_estimation_says_to_fit_one() -> None:
    rows = Rows(pd.DataFrame({"x0": [1.0]}), {"x0": "numerical"})
    found = evaluate(settings("regression"), SCOPE, detectors=["estimation"], rows={"": rows})
    assert [(r.detector, r.status) for r in found] == [("estimated_mae", "insufficient_data")]
    assert "monitor reference set" in found[0].details["reason"]


def test_a_window_scanned_in_blocks_scores_as_its_whole_matrix() -> None:
    # More rows than a block, gaps in one feature, and a domain classifier off then on: the
    # reconstruction error built block by block is the one of the whole window's matrix.
    model = settings("regression", estimation={"enabled": False})
    profile = stored(model, correlated(5000, 1))
    window = correlated(multivariate.BLOCK_ROWS * 2 + 123, 4, broken=True)
    window.loc[window.index % 7 == 0, "x2"] = np.nan
    blocks = score(model, window, profile, "multivariate")["reconstruction_error"]
    whole = replace(model, multivariate=replace(model.multivariate, domain_classifier=True))
    with_matrix = score(whole, window, profile, "multivariate")
    assert with_matrix["reconstruction_error"] == blocks
    assert "domain_classifier" in with_matrix
    assert profile.estimators is not None
    assert profile.estimators.reconstruction is not None
    rows = fitting.rows_from_table(model, window)
    expected = multivariate.reconstruction_error(
        profile.estimators.reconstruction, profile.estimators.matrix(rows)
    )
    assert blocks.score == expected.value
    assert blocks.details["sampling_error"] == expected.sampling_error
    assert blocks.current_size == expected.size == len(window)
