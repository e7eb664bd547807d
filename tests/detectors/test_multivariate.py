"""Multivariate drift: the PCA reconstruction error against NannyML 0.13 and scikit-learn, the
domain classifier against Evidently 0.7's own method, and hand-checkable cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.metrics.data_drift.embedding_drift_methods import (
    ModelDriftMethod,
    calc_roc_auc_random,
)
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from detectors.stats import multivariate
from tests.detectors.anchors import analysis_chunks, nannyml


def correlated(rng: np.random.Generator, size: int) -> np.ndarray:
    mix = np.random.default_rng(99).normal(size=(5, 5))
    offsets = np.array([0.0, 10.0, -3.0, 100.0, 1.0])
    return np.asarray(rng.normal(size=(size, 5)) @ mix + offsets, dtype=np.float64)


def test_two_copies_of_one_feature_reconstruct_exactly() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=500)
    profile = multivariate.fit_reconstruction(np.column_stack([base, 2 * base + 1]))
    assert len(profile.components) == 1
    errors = multivariate.reconstruction_errors(profile, np.column_stack([base, 2 * base + 1]))
    np.testing.assert_allclose(errors, 0.0, atol=1e-12)
    # A row off the line: standardised (1, -1) is at distance sqrt(2) from the diagonal.
    off = np.array([[base.mean() + base.std(), 2 * (base.mean() - base.std()) + 1]])
    assert multivariate.reconstruction_errors(profile, off)[0] == pytest.approx(np.sqrt(2))


def test_reconstruction_matches_scikit_learn() -> None:
    reference = correlated(np.random.default_rng(1), 3000)
    window = correlated(np.random.default_rng(2), 700)
    profile = multivariate.fit_reconstruction(reference)
    scaler = StandardScaler().fit(reference)
    pca = PCA(n_components=0.65).fit(scaler.transform(reference))
    assert len(profile.components) == pca.n_components_
    standard = scaler.transform(window)
    expected = np.linalg.norm(standard - pca.inverse_transform(pca.transform(standard)), axis=1)
    np.testing.assert_allclose(
        multivariate.reconstruction_errors(profile, window), expected, rtol=1e-9
    )


def test_identical_data_does_not_alert_and_broken_correlation_does() -> None:
    rng = np.random.default_rng(3)
    reference = correlated(rng, 5000)
    profile = multivariate.fit_reconstruction(reference)
    assert not multivariate.reconstruction_error(profile, reference).alert
    broken = correlated(rng, 1000)
    broken[:, 2] = rng.permutation(broken[:, 2])  # every column keeps its own distribution
    result = multivariate.reconstruction_error(profile, broken)
    assert result.alert
    assert result.breach == "above"
    assert result.direction == "higher"


def test_reconstruction_profile_round_trips_through_json() -> None:
    rng = np.random.default_rng(4)
    profile = multivariate.fit_reconstruction(correlated(rng, 2000), variance=0.8)
    restored = multivariate.ReconstructionProfile.from_json(
        json.loads(json.dumps(profile.to_json()))
    )
    assert restored == profile


def test_reconstruction_agrees_with_nannyml(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    reference = correlated(rng, 10_000)
    analysis = correlated(rng, 10_000)
    analysis[5000:, 2] = rng.permutation(analysis[5000:, 2])  # drift in the second half
    # Missing values take the reference mean in both; that moves the rows off the reference's
    # correlations too, so the first chunk alerts as well.
    analysis[:1000, 0] = np.nan
    answer = nannyml("pca", tmp_path, ref_x=reference, cur_x=analysis, chunk_size=1000)
    profile = multivariate.fit_reconstruction(reference, chunk_size=1000)
    assert len(profile.components) == answer["components"]
    chunks = analysis_chunks(answer)
    assert len(chunks) == 10
    alerts = []
    for index, chunk in enumerate(chunks):
        ours = multivariate.reconstruction_error(
            profile, analysis[index * 1000 : (index + 1) * 1000]
        )
        # The same standardisation and SVD: agreement to floating-point rounding.
        assert ours.value == pytest.approx(chunk["reconstruction_error.value"], rel=1e-9)
        assert ours.sampling_error == pytest.approx(
            chunk["reconstruction_error.sampling_error"], rel=1e-9
        )
        for ours_bound, key in ((ours.band.lower, "lower"), (ours.band.upper, "upper")):
            theirs = chunk[f"reconstruction_error.{key}_threshold"]
            assert ours_bound == (None if theirs is None else pytest.approx(theirs, rel=1e-9))
        assert ours.alert == chunk["reconstruction_error.alert"]
        alerts.append(ours.alert)
    assert alerts == [True] + [False] * 4 + [True] * 5


@pytest.mark.parametrize(
    ("reference_rows", "current_rows", "shift", "bootstrap"),
    [
        (3000, 2000, 0.0, None),
        (3000, 2000, 0.6, None),
        (500, 400, 0.0, None),  # under 1000 reference rows: Evidently bootstraps by default
        (500, 400, 0.3, None),
        (800, 900, 0.1, False),
        (2000, 2000, 0.2, True),
    ],
)
def test_domain_classifier_is_evidentlys(
    reference_rows: int, current_rows: int, shift: float, bootstrap: bool | None
) -> None:
    rng = np.random.default_rng(reference_rows + current_rows)
    reference = rng.normal(size=(reference_rows, 4))
    current = rng.normal(size=(current_rows, 4))
    current[:, 1] += shift
    method = ModelDriftMethod(bootstrap=reference_rows < 1000 if bootstrap is None else bootstrap)
    score, drifted, _ = method(pd.DataFrame(current), pd.DataFrame(reference))
    ours = multivariate.domain_classifier(reference, current, bootstrap=bootstrap)
    # The same splitter and classifier with the same seeds: the same number.
    assert ours.score == pytest.approx(score, abs=1e-12)
    assert ours.drifted == drifted
    assert ours.direction == "higher"
    if ours.details["bootstrap"]:
        # Evidently's threshold: the 95th percentile of 100 random scorings of the held-out rows.
        target = np.concatenate([np.ones(reference_rows), np.zeros(current_rows)])
        _, _, _, y_test = train_test_split(
            np.concatenate([reference, current]),
            target,
            test_size=0.5,
            random_state=42,
            shuffle=True,
        )
        expected = np.percentile([calc_roc_auc_random(y_test, i) for i in range(100)], 95)
        assert ours.threshold == pytest.approx(expected, abs=1e-12)
    else:
        assert ours.threshold == 0.55


def test_domain_classifier_needs_rows() -> None:
    result = multivariate.domain_classifier(np.zeros((1, 2)), np.zeros((5, 2)))
    assert result.status == "insufficient_data"
    assert result.score is None
    assert not result.drifted
