"""Performance metrics against scikit-learn, label delay by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics

from detectors.families.performance import classification, label_delay, regression, roc_auc


def text(values: list[int] | np.ndarray) -> np.ndarray:
    return np.array([str(value) for value in values], dtype=object)


def test_binary_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, size=2000)
    scores = np.clip(truth * 0.3 + rng.uniform(size=2000) * 0.7, 0, 1)
    predicted = (scores > 0.5).astype(int)
    result = classification(text(truth), text(predicted), scores, positive="1")
    assert result.accuracy == pytest.approx(metrics.accuracy_score(truth, predicted), abs=1e-12)
    assert result.precision == pytest.approx(metrics.precision_score(truth, predicted), abs=1e-12)
    assert result.recall == pytest.approx(metrics.recall_score(truth, predicted), abs=1e-12)
    assert result.f1 == pytest.approx(metrics.f1_score(truth, predicted), abs=1e-12)
    assert result.roc_auc == pytest.approx(metrics.roc_auc_score(truth, scores), abs=1e-12)
    assert result.average == "binary"


def test_without_a_positive_class_metrics_are_macro_averages() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, size=900)
    predicted = np.where(rng.uniform(size=900) < 0.7, truth, rng.integers(0, 3, size=900))
    result = classification(text(truth), text(predicted))
    for ours, theirs in [
        (result.precision, metrics.precision_score(truth, predicted, average="macro")),
        (result.recall, metrics.recall_score(truth, predicted, average="macro")),
        (result.f1, metrics.f1_score(truth, predicted, average="macro")),
    ]:
        assert ours == pytest.approx(theirs, abs=1e-12)
    assert result.roc_auc is None


def test_no_predicted_positives_gives_zero_precision_as_sklearn() -> None:
    result = classification(text([1, 0, 1]), text([0, 0, 0]), positive="1")
    assert (result.precision, result.recall, result.f1) == (0.0, 0.0, 0.0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 20)), min_size=2, max_size=60))
def test_roc_auc_equals_sklearn_with_ties(pairs: list[tuple[bool, int]]) -> None:
    positive = np.array([p for p, _ in pairs])
    scores = np.array([s / 20 for _, s in pairs])
    ours = roc_auc(positive, scores)
    if positive.all() or not positive.any():
        assert ours is None
    else:
        assert ours == pytest.approx(metrics.roc_auc_score(positive, scores), abs=1e-12)


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(2)
    truth = rng.normal(50, 10, size=1000)
    truth[:3] = 0.0  # MAPE divides by machine epsilon there, as sklearn does
    predicted = truth + rng.normal(0, 3, size=1000)
    result = regression(truth, predicted)
    assert result.mae == pytest.approx(metrics.mean_absolute_error(truth, predicted), abs=1e-12)
    assert result.rmse == pytest.approx(
        metrics.root_mean_squared_error(truth, predicted), abs=1e-12
    )
    assert result.mape == pytest.approx(
        metrics.mean_absolute_percentage_error(truth, predicted), rel=1e-12
    )


def test_label_delay_by_hand() -> None:
    delay = label_delay(np.array([0.0, 10.0, 20.0, 0.0]), np.array([60.0, 70.0, 620.0, np.nan]))
    assert delay is not None
    assert (delay.median, delay.maximum) == (60.0, 600.0)
    assert delay.p90 == pytest.approx(np.percentile([60.0, 60.0, 600.0], 90))
    assert label_delay(np.array([]), np.array([])) is None
