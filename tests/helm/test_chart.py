"""The chart, checked by what reads it: helm lint, the real API server (server-side apply
with strict field validation, the CRDs installed), kubernetes-validate for 1.29-1.34,
the CRDs' own schemas, promtool, and modeltap's config loader and rule generator."""

from __future__ import annotations

import filecmp
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from exporters.rules import rule_groups
from modeltap.configload import load_config
from monitor.cli import cli
from tests.helm import catalogue, chart_schema
from tests.helm.conftest import CHART, CRDS, ROOT, VALUES, render, run_helm
from tests.helm.kube import Kube

pytestmark = pytest.mark.integration

Json = dict[str, Any]
VALUE_SETS = {
    "default": [],
    "thresholds": [VALUES / "thresholds.yaml"],
    "hardened": [VALUES / "hardened.yaml"],
    "minimal": [VALUES / "minimal.yaml"],
}
CERT_MANAGER = {"Issuer", "Certificate"}
MONITORING = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
SHARED_CRDS = ROOT.parent / "shared" / "crds"


def kinds(objects: list[Json]) -> dict[str, list[Json]]:
    found: dict[str, list[Json]] = {}
    for item in objects:
        found.setdefault(item["kind"], []).append(item)
    return found


@pytest.mark.parametrize("values", [*VALUE_SETS, "certmanager"])
def test_helm_lint_strict(helm: str, values: str) -> None:
    files = VALUE_SETS.get(values, [VALUES / f"{values}.yaml"])
    args = ["lint", "--strict", str(CHART), "--kube-version", "1.29.0"]
    for path in files:
        args += ["-f", str(path)]
    output = run_helm(helm, *args)
    assert "1 chart(s) linted, 0 chart(s) failed" in output


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_object_is_accepted_by_the_api_server(helm: str, kube: Kube, values: str) -> None:
    namespace = f"mt-{values}-{uuid.uuid4().hex[:6]}"
    kube.namespace(namespace)
    objects = render(helm, VALUE_SETS[values], namespace=namespace)
    assert objects
    applied = []
    try:
        for item in objects:
            kube.apply(item, namespace)
            applied.append(item["kind"])
    finally:
        # The rendered webhook points at a Service with no pods; leave no such webhook.
        for item in objects:
            if item["kind"] == "MutatingWebhookConfiguration":
                kube.delete(item["kind"], item["apiVersion"], item["metadata"]["name"])
    assert applied == [item["kind"] for item in objects]
    if values == "default":
        assert set(applied) >= MONITORING
        assert {"Deployment", "Service", "MutatingWebhookConfiguration"} <= set(applied)


@pytest.mark.parametrize("minor", range(29, 35))
def test_kubernetes_validate_strict(helm: str, minor: int, tmp_path: Path) -> None:
    for name, files in VALUE_SETS.items():
        objects = render(helm, files, kube_version=f"1.{minor}.0")
        core = [o for o in objects if o["kind"] not in MONITORING | CERT_MANAGER]
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(core))
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "kubernetes-validate"), "--strict", "--quiet",
             "-k", f"1.{minor}.0", str(path)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, f"{name} on 1.{minor}: {result.stdout}{result.stderr}"


def test_the_custom_resources_match_their_crd_schemas(helm: str) -> None:
    schemas = {}
    for path in CRDS:
        crd = yaml.safe_load(path.read_text())
        version = next(v for v in crd["spec"]["versions"] if v["storage"])
        schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    checked = 0
    for files in VALUE_SETS.values():
        for item in render(helm, files):
            if item["kind"] in schemas:
                # No meta-check: the CRDs' patterns are Go regexes ((?i)...), which
                # Python's re refuses; the API server checked them in the apply test.
                jsonschema.Draft7Validator(schemas[item["kind"]]).validate(item)
                checked += 1
    assert checked >= 3


def test_promtool_accepts_the_rendered_rules(helm: str, tmp_path: Path) -> None:
    for name in ("default", "thresholds"):
        [rule] = kinds(render(helm, VALUE_SETS[name]))["PrometheusRule"]
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump(rule["spec"]))
        result = subprocess.run(
            ["promtool", "check", "rules", str(path)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def test_one_source_of_thresholds(helm: str, tmp_path: Path) -> None:
    objects = kinds(render(helm, VALUE_SETS["thresholds"]))
    [config_map] = [c for c in objects["ConfigMap"] if c["metadata"]["name"].endswith("-config")]
    config_file = tmp_path / "modeltap.yaml"
    config_file.write_text(config_map["data"]["modeltap.yaml"])
    rendered = yaml.safe_load(config_file.read_text())
    given = yaml.safe_load((VALUES / "thresholds.yaml").read_text())["config"]
    # The ConfigMap holds the values' keys as they were written ...
    assert rendered["detectors"]["thresholds"] == given["detectors"]["thresholds"]
    assert rendered["models"] == given["models"]
    # ... which modeltap's own loader accepts, with the thresholds the detectors will use,
    config = load_config(config_file, {})
    assert config.detectors.thresholds.latency_p99_ms == 250
    assert config.thresholds_for("churn").error_rate == 0.02
    # and the PrometheusRule is exactly what `monitor rules generate` makes of that file.
    [rule] = objects["PrometheusRule"]
    result = CliRunner().invoke(
        cli, ["--config", str(config_file), "rules", "generate", "--format", "prometheusrule"]
    )
    assert result.exit_code == 0, result.output
    generated = yaml.safe_load(result.output)
    assert rule["spec"] == generated["spec"]
    assert rule["spec"]["groups"] == rule_groups(config)
    # Non-default values did reach the rules (a chart ignoring them would fail here).
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert any('model=~"churn|fraud\\\\.v2"} < 0.72' in e for e in exprs)
    assert any(e.endswith("> 0.25") for e in exprs)


def test_default_rules_match_the_default_configuration(helm: str) -> None:
    [rule] = kinds(render(helm))["PrometheusRule"]
    [config_map] = [
        c for c in kinds(render(helm))["ConfigMap"] if c["metadata"]["name"].endswith("-config")
    ]
    config = load_config(None, {}, yaml.safe_load(config_map["data"]["modeltap.yaml"]))
    assert rule["spec"]["groups"] == rule_groups(config)


@pytest.mark.parametrize(
    "setting",
    [
        "typo=1",
        "collect.replica=2",
        "config.detectors.thresholds.latency_p99=5",
        "config.storage.url=postgresql+psycopg://modeltap:hunter2@db/modeltap",
        "config.serve.labels_token=abc",
        "injector.failurePolicy=Sometimes",
    ],
)
def test_the_schema_refuses_unknown_keys_and_inline_secrets(helm: str, setting: str) -> None:
    result = subprocess.run(
        [helm, "template", "modeltap", str(CHART), "--set", setting],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr


def test_generated_chart_files_are_current() -> None:
    assert chart_schema.PATH.read_text() == chart_schema.text(), (
        "values.schema.json is out of date; run python -m tests.helm.chart_schema"
    )
    assert catalogue.PATH.read_text() == catalogue.catalogue(), (
        "files/alerts.yaml is out of date; run python -m tests.helm.catalogue"
    )
    json.loads(chart_schema.PATH.read_text())
    for path in (ROOT / "dashboards" / "grafana").glob("*.json"):
        assert filecmp.cmp(path, CHART / "dashboards" / path.name, shallow=False), path.name


def test_the_crd_copies_are_the_shared_ones() -> None:
    assert len(CRDS) == 3
    if SHARED_CRDS.is_dir():
        for path in CRDS:
            assert filecmp.cmp(path, SHARED_CRDS / path.name, shallow=False), path.name


def test_dashboards_are_labelled_for_grafana(helm: str) -> None:
    maps = [
        c
        for c in kinds(render(helm))["ConfigMap"]
        if c["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert len(maps) == len(list((CHART / "dashboards").glob("*.json"))) == 4
    for item in maps:
        [(name, text)] = item["data"].items()
        assert json.loads(text) == json.loads((CHART / "dashboards" / name).read_text())


def test_every_pod_is_restricted_with_probes_and_resources(helm: str) -> None:
    for files in VALUE_SETS.values():
        for deployment in kinds(render(helm, files)).get("Deployment", []):
            pod = deployment["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["automountServiceAccountToken"] is False
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True
                assert context["allowPrivilegeEscalation"] is False
                assert context["capabilities"] == {"drop": ["ALL"]}
                assert context["seccompProfile"] == {"type": "RuntimeDefault"}
                assert container["resources"]["requests"]
                assert container["livenessProbe"]
                assert container["readinessProbe"]


def test_cert_manager_issues_the_webhook_certificate(helm: str) -> None:
    objects = kinds(render(helm, [VALUES / "certmanager.yaml"]))
    [certificate] = objects["Certificate"]
    [webhook] = objects["MutatingWebhookConfiguration"]
    assert certificate["spec"]["secretName"] == "modeltap-webhook-tls"
    assert webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        "modeltap/modeltap-webhook"
    )
    assert "caBundle" not in webhook["webhooks"][0]["clientConfig"]
    assert not [s for s in objects.get("Secret", []) if s["metadata"]["name"].endswith("-tls")]


def test_the_generated_certificate_serves_the_webhook_service(helm: str) -> None:
    from cryptography import x509

    objects = kinds(render(helm))
    [secret] = objects["Secret"]
    [webhook] = objects["MutatingWebhookConfiguration"]
    hook = webhook["webhooks"][0]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["objectSelector"] == {"matchLabels": {"modeltap.io/inject": "true"}}
    excluded = hook["namespaceSelector"]["matchExpressions"][0]["values"]
    assert {"kube-system", "modeltap"} <= set(excluded)
    assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    import base64

    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "modeltap-webhook.modeltap.svc" in names.get_values_for_type(x509.DNSName)
