"""One model, one window, every detector: result shapes, thresholds, A/B, segments."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from detectors.emit import Scope
from detectors.evaluate import evaluate
from detectors.families.ab import results as ab_results
from detectors.profile import fit_profile
from detectors.rows import Requests, Rows
from detectors.settings import ModelSettings
from detectors.windows import window_at
from modeltap.schema import DetectorResult

NOW = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
WINDOW = window_at(NOW - timedelta(minutes=30), timedelta(hours=1))
SCOPE = Scope("churn", "", WINDOW, NOW)
SETTINGS = ModelSettings(
    model="churn",
    task="classification",
    kinds={"age": "numerical", "plan": "categorical"},
    positive_class="1",
    segment_by="plan",
    thresholds={"latency_p99_ms": 100.0, "error_rate": 0.05, "accuracy_min": 0.8},
)
PLANS = np.array(["basic", "pro"], dtype=object)


def make_rows(
    size: int, rng: np.random.Generator, *, age_shift: float = 0.0, accuracy: float = 0.9
) -> Rows:
    truth = rng.integers(0, 2, size=size).astype(str).astype(object)
    right = rng.uniform(size=size) < accuracy
    predicted = np.where(right, truth, np.where(truth == "1", "0", "1")).astype(object)
    labelled = rng.uniform(size=size) < 0.8
    ts = NOW.timestamp() - 1800 + rng.uniform(0, 1800, size=size)
    return Rows(
        pd.DataFrame(
            {"age": rng.normal(40 + age_shift, 10, size=size), "plan": rng.choice(PLANS, size=size)}
        ),
        dict(SETTINGS.kinds),
        violations={"age": 0, "plan": 0},
        ts=ts,
        prediction=predicted,
        score=np.where(predicted == "1", 0.8, 0.2),
        label=np.where(labelled, truth, np.full(size, None, dtype=object)),
        label_received_at=ts + 3600,
    )


def make_requests(
    size: int, rng: np.random.Generator, *, error_rate: float, latency: float
) -> Requests:
    return Requests(
        version=np.full(size, "v", dtype=object),
        latency_ms=rng.lognormal(np.log(latency), 0.3, size=size),
        status_code=np.where(rng.uniform(size=size) < error_rate, 500, 200),
        upstream_failed=np.zeros(size, dtype=bool),
    )


def by(
    results: list[DetectorResult], detector: str, feature: str = "", segment: str = ""
) -> DetectorResult:
    found = [
        r for r in results if (r.detector, r.feature, r.segment) == (detector, feature, segment)
    ]
    assert len(found) == 1, (detector, feature, segment, len(found))
    return found[0]


def test_every_detector_reports_for_every_version() -> None:
    rng = np.random.default_rng(0)
    reference = fit_profile(
        make_rows(20_000, rng), prediction_kind="categorical", segment_by="plan"
    )
    results = evaluate(
        SETTINGS,
        SCOPE,
        requests={"v1": make_requests(3000, rng, error_rate=0.01, latency=30)},
        rows={"v1": make_rows(3000, rng, age_shift=8.0)},
        profiles={"v1": reference},
    )
    assert {r.version for r in results} == {"v1"}
    assert all(r.window_start == WINDOW.start and r.window_end == WINDOW.end for r in results)
    assert all(r.direction in ("lower", "higher") for r in results)
    p99 = by(results, "latency_p99_ms")
    assert (p99.threshold, p99.direction, p99.alert) == (100.0, "higher", False)
    throughput = by(results, "throughput_rps")
    assert throughput.score == pytest.approx(3000 / 3600)
    assert throughput.direction == "lower"
    assert by(results, "missing_ratio", "age").score == 0.0
    # Age moved by 0.8 standard deviations: every test sees it; plan did not move.
    for detector in ("ks", "psi", "feature_drift"):
        assert by(results, detector, "age").alert, detector
    assert not by(results, "feature_drift", "plan").alert
    ks = by(results, "ks", "age")
    assert ks.direction == "lower"
    assert ks.statistic is not None
    # The default sample keeps all 20,000 reference values: above 10,000 scipy's auto (and
    # so modeltap) takes the asymptotic distribution; test_ks.py covers the exact one.
    assert ks.details["method"] == "asymp"
    dataset = by(results, "dataset_drift")
    assert (dataset.score, dataset.alert) == (0.5, True)
    assert not by(results, "prediction_drift").alert
    coverage = by(results, "label_coverage")
    assert coverage.score == pytest.approx(0.8, abs=0.03)
    assert by(results, "label_delay_s").score == pytest.approx(3600)
    accuracy = by(results, "accuracy")
    assert accuracy.score == pytest.approx(0.9, abs=0.02)
    assert (accuracy.threshold, accuracy.direction, accuracy.alert) == (0.8, "lower", False)
    assert by(results, "roc_auc").score is not None
    # Segments: drift and performance again per plan, without the segment feature itself.
    assert by(results, "feature_drift", "age", "plan=pro").alert
    assert by(results, "accuracy", segment="plan=basic").status == "ok"
    assert not [r for r in results if r.segment and r.feature == "plan"]
    assert not [r for r in results if r.detector.startswith("ab_")]


def test_without_a_reference_drift_says_so_instead_of_guessing() -> None:
    rng = np.random.default_rng(1)
    results = evaluate(SETTINGS, SCOPE, detectors=["drift"], rows={"v1": make_rows(500, rng)})
    assert len(results) == 1
    assert results[0].status == "insufficient_data"
    assert "monitor reference set" in results[0].details["reason"]


def test_too_few_labels_for_performance_is_insufficient_data() -> None:
    rng = np.random.default_rng(2)
    results = evaluate(SETTINGS, SCOPE, detectors=["performance"], rows={"v1": make_rows(20, rng)})
    accuracy = by(results, "accuracy")
    assert accuracy.status == "insufficient_data"
    assert accuracy.score is None
    assert not accuracy.alert


def test_ab_finds_a_planted_regression() -> None:
    rng = np.random.default_rng(3)
    requests = {
        "v1": make_requests(5000, rng, error_rate=0.01, latency=30),
        "v2": make_requests(800, rng, error_rate=0.05, latency=36),
    }
    rows = {"v1": make_rows(5000, rng, accuracy=0.9), "v2": make_rows(800, rng, accuracy=0.8)}
    results = ab_results(SCOPE, requests, rows, SETTINGS)
    assert {r.version for r in results} == {"v2"}
    for detector in ("ab_error_rate", "ab_latency", "ab_accuracy"):
        result = by(results, detector)
        assert result.alert, detector
        assert result.score is not None
        assert result.score < 1e-4
        assert result.details["baseline"] == "v1"
    assert by(results, "ab_error_rate").details["difference"] > 0
    assert by(results, "ab_latency").details["rank_biserial"] > 0


def test_ab_does_not_alert_on_a_better_challenger() -> None:
    rng = np.random.default_rng(4)
    requests = {
        "v1": make_requests(5000, rng, error_rate=0.05, latency=40),
        "v2": make_requests(2000, rng, error_rate=0.01, latency=30),
    }
    results = ab_results(SCOPE, requests, {}, SETTINGS)
    rates = by(results, "ab_error_rate")
    assert rates.details["significant"] is True
    assert not rates.alert


def test_ab_without_an_effect_alerts_at_about_the_significance_level() -> None:
    alerts: Counter[str] = Counter()
    trials = 200
    for seed in range(trials):
        rng = np.random.default_rng(1000 + seed)
        requests = {
            "v1": make_requests(600, rng, error_rate=0.1, latency=30),
            "v2": make_requests(400, rng, error_rate=0.1, latency=30),
        }
        for result in ab_results(SCOPE, requests, {}, SETTINGS):
            alerts[result.detector] += bool(result.score is not None and result.score < 0.05)
    # Under no effect p < 0.05 happens 5% of the time (two-sided); 200 trials put the count
    # within 1..25 with overwhelming probability, and never near the 100% of a real effect.
    for detector in ("ab_error_rate", "ab_latency"):
        assert 1 <= alerts[detector] <= 25, (detector, alerts[detector])


def test_a_single_version_has_no_ab() -> None:
    rng = np.random.default_rng(5)
    assert (
        ab_results(SCOPE, {"v1": make_requests(100, rng, error_rate=0.1, latency=5)}, {}, SETTINGS)
        == []
    )


def test_unknown_detectors_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown detector"):
        evaluate(SETTINGS, SCOPE, detectors=["drifts"])
