"""Dashboards: generated and current, unchanged through grafana-foundation-sdk, schema-valid."""

from __future__ import annotations

import filecmp
import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from exporters.dashboards.alerting import grafana_rules
from exporters.dashboards.render import dashboards
from exporters.rules import rule_groups
from modeltap.configload import load_config
from monitor.cli import cli
from tests.exporters.grafana_schemas import dashboard_problems, problems

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"
CONFIG = load_config(ROOT / "config.example.yaml", {})
BOARDS = sorted(GRAFANA.glob("*.json"))


def test_the_checked_in_dashboards_are_generated_from_the_example(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--config", str(ROOT / "config.example.yaml"), "dashboards", "export", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    kept = sorted(p.relative_to(GRAFANA) for p in GRAFANA.rglob("*") if p.is_file())
    assert fresh == kept
    stale = [str(p) for p in fresh if not filecmp.cmp(tmp_path / p, GRAFANA / p, shallow=False)]
    assert stale == [], (
        f"out of date: {stale}; regenerate with "
        "`monitor --config config.example.yaml dashboards export dashboards/grafana`"
    )
    assert [p.stem for p in BOARDS] == sorted(
        ["modeltap-drift", "modeltap-health", "modeltap-overview", "modeltap-performance"]
    )


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_a_dashboard_round_trips_through_the_sdk_unchanged(path: Path) -> None:
    register_default_plugins()
    original = json.loads(path.read_text())
    again = json.loads(json.dumps(Dashboard.from_json(original), cls=JSONEncoder))
    assert again == original


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_a_dashboard_is_valid_against_the_strict_schemas(path: Path) -> None:
    board = json.loads(path.read_text())
    assert list(dashboard_problems(board)) == []
    names = [variable["name"] for variable in board["templating"]["list"]]
    assert names == ["model", "version"]
    for panel in board["panels"]:
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "modeltap-prometheus"}
        assert panel["targets"], panel["title"]


def test_the_schema_check_is_strict() -> None:
    board = json.loads(BOARDS[0].read_text())
    board["panels"][0]["options"]["colourMode"] = "background"
    board["panels"][1]["targets"][0]["exprr"] = "up"
    board["refresh_rate"] = "5s"
    found = list(dashboard_problems(board))
    assert len(found) == 3, found


def test_thresholds_on_the_panels_are_the_configurations() -> None:
    boards = dashboards(CONFIG)
    steps = {
        panel["title"]: [
            step["value"] for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        ]
        for board in boards.values()
        for panel in board["panels"]
        if "thresholds" in panel["fieldConfig"]["defaults"]
    }
    assert steps["Latency quantiles (caller side)"] == [0.0, 1.0]
    assert steps["Error rate by code"] == [0.0, 0.05]
    assert steps["PSI per feature"] == [0.0, 0.2]
    assert steps["Accuracy and F1 (classification)"] == [0.0, 0.8]
    assert steps["Dataset drift share"] == [0.0, 0.5]
    assert steps["Detector staleness"] == [0.0, 900.0]
    assert steps["Missing values"] == [0.0]  # no threshold configured: nothing drawn


def substitute(expr: str) -> str:
    return (
        expr.replace("$__rate_interval", "1m").replace("$model", "churn").replace("$version", ".*")
    )


def test_every_panel_query_is_valid_promql(prometheus_url: str) -> None:
    for board in dashboards(CONFIG).values():
        for panel in board["panels"]:
            for target in panel["targets"]:
                url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode(
                    {"query": substitute(target["expr"])}
                )
                with urllib.request.urlopen(url, timeout=10) as response:
                    assert json.load(response)["status"] == "success", target["expr"]


def test_grafana_alert_rules_use_the_same_thresholds_and_match_the_schemas() -> None:
    groups = grafana_rules(CONFIG, folder_uid="modeltap")
    prometheus = [rule for group in rule_groups(CONFIG) for rule in group["rules"]]
    grafana = [rule for group in groups for rule in group["rules"]]
    assert [r["title"] for r in grafana] == [r["alert"] for r in prometheus]
    for group in groups:
        assert problems(group, "alerting", "RuleGroup") == []
    by_title: dict[str, Any] = {}
    for rule in grafana:
        assert problems(rule, "alerting", "Rule") == []
        query, reduce, threshold = (item["model"] for item in rule["data"])
        assert problems(query, "prometheus") == []
        assert problems(reduce, "expr", "TypeReduce") == []
        assert problems(threshold, "expr", "TypeThreshold") == []
        by_title.setdefault(rule["title"], []).append((query["expr"], threshold["conditions"]))
    accuracy = by_title["ModeltapAccuracyLow"]
    assert accuracy[0] == (
        'modeltap_performance_score{metric="accuracy",model=~"churn"}',
        [{"evaluator": {"type": "lt", "params": [0.7]}}],
    )
    assert by_title["ModeltapDatasetDrift"][0][1][0]["evaluator"] == {
        "type": "gte",
        "params": [0.5],
    }
    assert by_title["ModeltapTargetDown"][0][1][0]["evaluator"] == {"type": "eq", "params": [0.0]}
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "alerting" / "modeltap.yaml").read_text()
    )
    assert [r["title"] for g in provisioned["groups"] for r in g["rules"]] == [
        r["title"] for r in grafana
    ]
    assert {g["folder"] for g in provisioned["groups"]} == {"modeltap"}


def test_provisioning_points_the_dashboards_at_the_data_source() -> None:
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "modeltap.yaml").read_text()
    )
    assert source["datasources"][0]["uid"] == CONFIG.exporter.datasource_uid
    assert source["datasources"][0]["type"] == "prometheus"
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "modeltap.yaml").read_text()
    )
    assert provider["providers"][0]["type"] == "file"


def test_estimate_and_realized_share_a_panel_with_the_learned_threshold_dashed() -> None:
    boards = dashboards(CONFIG)

    def panel(board: str, title: str) -> dict[str, Any]:
        found = [p for p in boards[board]["panels"] if p["title"] == title]
        assert len(found) == 1, [p["title"] for p in boards[board]["panels"]]
        only: dict[str, Any] = found[0]
        return only

    def dashed(found: dict[str, Any]) -> list[str]:
        return [
            override["matcher"]["options"]
            for override in found["fieldConfig"]["overrides"]
            if override["matcher"]["id"] == "byFrameRefID"
            and {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}
            in override["properties"]
        ]

    accuracy = panel("modeltap-performance", "Accuracy before labels: estimated and realized")
    assert [(t["refId"], t["expr"], t["legendFormat"]) for t in accuracy["targets"]] == [
        ("A", 'modeltap_performance_estimated_score{model="$model",version=~"$version",'
              'metric="accuracy"}', "{{version}} {{kind}}"),
        ("B", 'modeltap_performance_estimated_threshold{model="$model",version=~"$version",'
              'metric="accuracy"}', "{{version}} threshold"),
    ]  # fmt: skip
    assert dashed(accuracy) == ["B"]
    errors = panel("modeltap-performance", "MAE and RMSE before labels: estimated and realized")
    assert errors["targets"][0]["expr"].startswith("modeltap_performance_estimated_error{")
    assert 'metric=~"mae|rmse"' in errors["targets"][1]["expr"]
    assert dashed(errors) == ["B"]
    multivariate = panel("modeltap-drift", "Multivariate drift")
    assert [t["expr"].split("{")[0] for t in multivariate["targets"]] == [
        "modeltap_multivariate_drift_score",
        "modeltap_multivariate_drift_threshold",
    ]
    assert multivariate["targets"][0]["legendFormat"] == "{{method}} {{version}}"
    assert dashed(multivariate) == ["B"]
