"""The detector daemon's log says what alerted, once per verdict."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from detectors.daemon import log_outcome
from detectors.runner import JobOutcome
from modeltap.schema import DetectorResult

T = datetime(2026, 11, 25, 12, tzinfo=UTC)


def result(detector: str, *, alert: bool, feature: str = "age") -> DetectorResult:
    return DetectorResult(
        model="churn",
        version="v2",
        detector=detector,
        feature=feature,
        window_start=T,
        window_end=T.replace(hour=13),
        computed_at=T,
        status="ok",
        score=0.31,
        threshold=0.2,
        direction="higher",
        alert=alert,
        current_size=1200,
    )


def test_each_alerting_verdict_is_logged_and_the_raw_tests_behind_it_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome = JobOutcome(
        "churn",
        "drift",
        "ok",
        results=[
            result("ks", alert=True),
            result("psi", alert=True),
            result("feature_drift", alert=True),
            result("feature_drift", alert=False, feature="plan"),
        ],
    )
    with caplog.at_level(logging.INFO, logger="modeltap"):
        log_outcome(outcome)
    alerts = [record.getMessage() for record in caplog.records if "ALERT" in record.getMessage()]
    assert alerts == [
        "ALERT churn v2 feature_drift age: 0.31 (drift when higher than 0.2), "
        "window 2026-11-25 12:00 .. 13:00 UTC, n=1200"
    ]
    assert [r.levelname for r in caplog.records if "ALERT" in r.getMessage()] == ["WARNING"]
