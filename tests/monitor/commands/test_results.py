"""`monitor results`: stored results for a model and a range, as a table or JSON (CliRunner)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from modeltap.schema import DetectorResult, DetectorRun
from modeltap.store import open_store
from monitor.cli import cli

T0 = datetime(2026, 11, 25, tzinfo=UTC)
HOUR = timedelta(hours=1)


def result(window: int, detector: str, **fields: Any) -> DetectorResult:
    start = T0 + window * HOUR
    values: dict[str, Any] = {
        "model": "churn",
        "version": "v1",
        "detector": detector,
        "window_start": start,
        "window_end": start + HOUR,
        "computed_at": start + HOUR,
        "status": "ok",
        "score": 0.1,
        "threshold": 0.2,
        "direction": "higher",
        "alert": False,
    }
    return DetectorResult(**(values | fields))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = open_store(url)
    store.upsert_results(
        [
            *(result(hour, "feature_drift", feature="age") for hour in range(3)),
            result(1, "feature_drift", feature="plan", score=0.4, alert=True),
            # The raw test behind a verdict: shown with --all, never counted as an alert.
            result(
                1, "ks", feature="plan", score=0.001, threshold=0.05, direction="lower", alert=True
            ),
            result(
                2,
                "accuracy",
                status="insufficient_data",
                score=None,
                details={"reason": "12 labelled rows"},
            ),
        ]
    )
    store.record_run(
        DetectorRun(
            "churn",
            "drift",
            T0 + 3 * HOUR,
            12.0,
            "error",
            T0 + 3 * HOUR,
            error="the stored reference profile cannot be read",
        )
    )
    store.close()
    path = tmp_path / "c.yaml"
    path.write_text(
        f"storage: {{url: '{url}'}}\nmodels:\n  - name: churn\n    task: classification\n"
        "    features: [{name: age, type: numerical}, {name: plan, type: categorical}]\n"
    )
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(config), "results", "--model", "churn", "--end",
              "2026-11-25T06:00:00Z", *args],
    )  # fmt: skip


def test_the_table_shows_alerts_the_newest_window_and_why_a_result_is_missing(
    config: Path,
) -> None:
    shown = run(config)
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert (
        "churn: 3 window(s) stored between 2026-11-24 06:00 and 2026-11-25 06:00 UTC; 1 alert(s)"
        in text
    )
    assert "drift: last run 2026-11-25 03:00 UTC error" in text
    assert "the stored reference profile cannot be read" in text
    assert "2026-11-25 01:00..02:00 │ v1 │ feature_drift │ plan" in text
    assert "newest window 2026-11-25 02:00 .. 03:00 UTC" in text
    assert "12 labelled rows" in text
    assert "│ ks " not in shown.output


def test_json_lists_alerts_and_results_with_their_windows(config: Path) -> None:
    shown = run(config, "--format", "json")
    document = json.loads(shown.output)
    assert [(a["detector"], a["feature"], a["window_start"]) for a in document["alerts"]] == [
        ("feature_drift", "plan", "2026-11-25T01:00:00+00:00")
    ]
    assert {r["detector"] for r in document["results"]} == {"feature_drift", "accuracy"}
    assert document["runs"][0]["last_status"] == "error"
    every = json.loads(run(config, "--format", "json", "--all").output)
    assert "ks" in {r["detector"] for r in every["results"]}


def test_alerts_only_a_range_and_the_exit_code(config: Path) -> None:
    narrow = run(config, "--start", "2026-11-25T02:00:00Z", "--alerts-only", "--format", "json")
    document = json.loads(narrow.output)
    assert document["alerts"] == []
    assert [r["detector"] for r in document["results"]] == ["accuracy"]
    assert run(config, "--fail-on-alert").exit_code == 1
    assert run(config, "--start", "2026-11-25T02:00:00Z", "--fail-on-alert").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--last", "soon"], "--last:"),
        (["--start", "2026-11-25T07:00:00Z"], "--start must be before --end"),
        (["--start", "yesterday"], "is not an ISO 8601 time"),
    ],
)
def test_usage_errors_exit_2(config: Path, args: list[str], message: str) -> None:
    shown = run(config, *args)
    assert shown.exit_code == 2
    assert message in shown.output


def test_a_model_not_configured_is_named(config: Path) -> None:
    shown = CliRunner().invoke(cli, ["--config", str(config), "results", "--model", "nosuch"])
    assert shown.exit_code == 2
    assert "model 'nosuch' is not configured (configured: churn)" in shown.output
