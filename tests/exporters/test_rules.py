"""Alert rules: generated from the config, current when checked in, unit-tested with promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from exporters.alerts import ALERTS, NAMES
from exporters.rules import rule_groups
from modeltap.configload import load_config
from monitor.cli import cli

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "dashboards" / "prometheus"
CRD = Path(__file__).parent / "schemas" / "crds" / "monitoring.coreos.com_prometheusrules.yaml"
EXAMPLE = ROOT / "config.example.yaml"


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} must be on PATH (scripts/services.sh installs it)"
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def generate(*args: str, config: Path = EXAMPLE) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), "rules", "generate", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    ("name", "args"), [("rules.yml", []), ("prometheusrule.yaml", ["--format", "prometheusrule"])]
)
def test_the_checked_in_rules_are_generated_from_the_example(name: str, args: list[str]) -> None:
    checked_in = (RULES / name).read_text()
    assert checked_in == generate(*args), (
        f"dashboards/prometheus/{name} is out of date; regenerate it with "
        f"`monitor --config config.example.yaml rules generate {' '.join(args)} -o ...`"
    )


def test_promtool_checks_the_rule_file_and_the_prometheusrule_spec(tmp_path: Path) -> None:
    checked = run(tool("promtool"), "check", "rules", str(RULES / "rules.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 18 rules found" in checked.stdout
    spec = yaml.safe_load((RULES / "prometheusrule.yaml").read_text())["spec"]
    (tmp_path / "spec.yml").write_text(yaml.safe_dump(spec))
    checked = run(tool("promtool"), "check", "rules", str(tmp_path / "spec.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_unit_tests_pass_and_cover_every_alert_both_ways() -> None:
    tested = run(tool("promtool"), "test", "rules", str(RULES / "rules.test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    suite = yaml.safe_load((RULES / "rules.test.yml").read_text())
    firing: set[str] = set()
    silent: set[str] = set()
    for case in suite["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    rules = yaml.safe_load((RULES / "rules.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert alerts == set(NAMES)
    assert firing == alerts
    # "Silent" checks sit before the `for` has passed, with healthy series beside the bad.
    assert silent == alerts


def test_promtool_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    """The unit tests are not vacuous: the same tests against a looser rule file fail."""
    loose = (RULES / "rules.yml").read_text().replace("> 0.05", "> 0.2")
    (tmp_path / "rules.yml").write_text(loose)
    shutil.copy(RULES / "rules.test.yml", tmp_path)
    tested = run(tool("promtool"), "test", "rules", str(tmp_path / "rules.test.yml"))
    assert tested.returncode != 0
    assert "ModeltapHighErrorRate" in tested.stdout + tested.stderr


def strict(schema: Any) -> Any:
    """The CRD's schema refusing unknown fields, as the API server's structural pruning would
    drop them (unless the schema says to keep them)."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def test_the_prometheusrule_matches_the_operator_crd_schema() -> None:
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    # Draft 7 without checking the schema itself: its Go regexes ((?i) mid-pattern) are
    # not Python's, and only the patterns of fields present are ever compiled.
    validator = jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))
    document = yaml.safe_load((RULES / "prometheusrule.yaml").read_text())
    assert list(validator.iter_errors(document)) == []
    rule = document["spec"]["groups"][0]["rules"][0]
    rule["for"] = "five minutes"
    rule["severity"] = "critical"
    problems = sorted(error.message for error in validator.iter_errors(document))
    assert len(problems) == 2, problems
    assert "'five minutes' does not match" in problems[0]
    assert "'severity' was unexpected" in problems[1]


def test_every_runbook_link_has_its_section_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    anchors = set(re.findall(r'<a id="(runbook-[a-z0-9]+)"></a>', readme))
    assert {alert.anchor for alert in ALERTS} <= anchors
    rules = yaml.safe_load((RULES / "rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["annotations"]["runbook_url"].startswith("README.md#runbook-")


def groups_for(text: str, tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return {group["name"]: group["rules"] for group in rule_groups(load_config(path, {}))}


def test_thresholds_and_overrides_come_from_the_config(tmp_path: Path) -> None:
    groups = groups_for(
        "models:\n"
        "  - {name: a.b, task: regression, thresholds: {rmse_max: 3}}\n"
        "  - {name: c, task: regression, thresholds: {rmse_max: 3}}\n"
        "  - {name: d, task: regression, thresholds: {latency_p99_ms: null}}\n"
        "detectors: {interval: 2m, thresholds: {latency_p99_ms: 250, rmse_max: 7}}\n"
        "exporter: {alert_for: {ModeltapRmseHigh: 1h}, runbook_url: 'https://x/README.md'}\n",
        tmp_path,
    )
    rmse = [rule for rule in groups["modeltap.performance"] if rule["alert"] == "ModeltapRmseHigh"]
    assert [(rule["expr"], rule["for"]) for rule in rmse] == [
        ('modeltap_performance_error{metric="rmse",model=~"a\\\\.b|c"} > 3.0', "1h"),
        ('modeltap_performance_error{metric="rmse",model!~"a\\\\.b|c"} > 7.0', "1h"),
    ]
    latency = groups["modeltap.serving"][0]
    # d turned the latency alert off: it is left out of the default rule.
    assert '_bucket{model!~"d"}[5m]))) > 0.25' in latency["expr"]
    assert latency["annotations"]["summary"].endswith("p99 latency above 0.25s")
    stale = next(r for r in groups["modeltap.pipeline"] if r["alert"] == "ModeltapDetectorStale")
    assert stale["expr"] == "modeltap_detector_staleness_seconds > 360.0"
    assert (
        stale["annotations"]["runbook_url"] == "https://x/README.md#runbook-modeltapdetectorstale"
    )
    # No accuracy threshold anywhere: no accuracy rule.
    assert "ModeltapAccuracyLow" not in {r["alert"] for r in groups["modeltap.performance"]}


def test_an_unknown_alert_in_alert_for_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("exporter: {alert_for: {ModeltapDriftt: 5m}}\n")
    result = CliRunner().invoke(cli, ["--config", str(path), "rules", "generate"])
    assert result.exit_code == 2
    assert "exporter.alert_for.ModeltapDriftt: unknown alert; known: ModeltapHighLatencyP99" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_rules_list_names_every_alert() -> None:
    result = CliRunner().invoke(cli, ["rules", "list"])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()] == list(NAMES)
    assert "off (no threshold set)" in result.output  # accuracy_min is empty by default


def test_the_alertmanager_example_is_valid_and_routes_by_severity() -> None:
    config = str(ROOT / "dashboards" / "alertmanager" / "alertmanager.yml")
    checked = run(tool("amtool"), "check-config", config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for labels, receiver in (
        (["severity=critical", "alertname=ModeltapHighErrorRate"], "pager"),
        (["severity=warning", "alertname=ModeltapFeatureDrift"], "chat"),
    ):
        routed = run(tool("amtool"), "config", "routes", "test", f"--config.file={config}", *labels)
        assert routed.returncode == 0, routed.stderr
        assert routed.stdout.strip() == receiver
