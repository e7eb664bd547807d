"""The injector's patch and review logic, without a server: pods in, patches out."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modeltap.errors import ConfigError
from monitor.cli import cli
from monitor.webhook.patch import SIDECAR, apply_patch, inject
from monitor.webhook.review import answer
from monitor.webhook.settings import InjectionSettings, load_settings

SETTINGS = InjectionSettings(image="modeltap-sidecar:1")
Json = dict[str, Any]


def pod(**annotations: str) -> Json:
    return {
        "metadata": {"labels": {"app": "churn"}, "annotations": annotations},
        "spec": {
            "containers": [
                {"name": "log-shipper", "image": "x"},
                {
                    "name": "model",
                    "image": "m",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
                    "lifecycle": {"preStop": {"httpGet": {"path": "/drain", "port": "http"}}},
                },
            ],
            "volumes": [{"name": "models", "emptyDir": {}}],
        },
    }


def injected(source: Json, settings: InjectionSettings = SETTINGS) -> Json:
    result = inject(source, settings)
    assert result.outcome == "injected", result.warnings
    return apply_patch(source, result.patch)


def test_the_patch_takes_over_the_port_and_renumbers_what_named_it() -> None:
    source = pod()
    out = injected(source)
    model = out["spec"]["containers"][1]
    assert model["ports"] == [{"containerPort": 8080}]
    assert model["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080}
    assert model["lifecycle"]["preStop"]["httpGet"]["port"] == 8080
    [sidecar] = out["spec"]["initContainers"]
    assert sidecar["ports"][0] == {"name": "http", "containerPort": 8700, "protocol": "TCP"}
    assert [v["name"] for v in out["spec"]["volumes"]] == ["models", "modeltap-spool"]
    # Nothing else changed: the other container, the metadata.
    assert out["spec"]["containers"][0] == source["spec"]["containers"][0]
    assert out["metadata"] == source["metadata"]


def test_an_injected_pod_gets_no_patch_at_all() -> None:
    out = injected(pod())
    again = inject(out, SETTINGS)
    assert (again.outcome, again.patch, again.warnings) == ("already_injected", [], [])


def test_a_plain_container_for_older_clusters() -> None:
    out = injected(pod(), SETTINGS.model_copy(update={"native": False}))
    assert "initContainers" not in out["spec"]
    assert out["spec"]["containers"][-1]["name"] == SIDECAR
    assert "restartPolicy" not in out["spec"]["containers"][-1]


def test_annotations_choose_port_and_settings() -> None:
    source = pod(**{
        "modeltap.io/upstream-port": "8080",
        "modeltap.io/listen-port": "9000",
        "modeltap.io/model": "churn-eu",
        "modeltap.io/sink": "kafka://k:9092/t",
        "modeltap.io/memory-limit": "1Gi",
        "modeltap.io/cpu-request": "10m",
    })  # fmt: skip
    [sidecar] = injected(source)["spec"]["initContainers"]
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert env["MONITOR_SIDECAR__LISTEN"] == "0.0.0.0:9000"
    assert env["MONITOR_SIDECAR__MODEL"] == "churn-eu"
    assert env["MONITOR_SINK__URL"] == "kafka://k:9092/t"
    assert sidecar["resources"] == {
        "requests": {"cpu": "10m", "memory": "64Mi"},
        "limits": {"memory": "1Gi"},
    }


def test_the_sink_secret_is_referenced_not_copied() -> None:
    settings = InjectionSettings.model_validate(
        {"image": "i", "sinkSecret": {"name": "db", "key": "url"}, "sink": "ignored"}
    )
    [sidecar] = injected(pod(), settings)["spec"]["initContainers"]
    [sink] = [e for e in sidecar["env"] if e["name"] == "MONITOR_SINK__URL"]
    assert sink == {
        "name": "MONITOR_SINK__URL",
        "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}},
    }


@pytest.mark.parametrize(
    ("annotations", "reason"),
    [
        ({"modeltap.io/sample-rate": "2"}, "sample-rate must be a number from 0 to 1"),
        ({"modeltap.io/memory-limit": "lots"}, "expected a resource quantity"),
        ({"modeltap.io/memory-request": "1Gi"}, "memory request 1Gi is above its limit 256Mi"),
        ({"modeltap.io/upstream-port": "grpc"}, "no container declares the port 'grpc'"),
        ({"modeltap.io/listen-port": "8080"}, "port 8080 is already used"),
    ],
)
def test_what_cannot_be_injected_is_said_not_patched(
    annotations: dict[str, str], reason: str
) -> None:
    result = inject(pod(**annotations), SETTINGS)
    assert result.outcome == "skipped"
    assert result.patch == []
    assert reason in result.warnings[0]


def test_an_unnamed_port_is_injected_with_a_warning() -> None:
    source = pod()
    del source["spec"]["containers"][1]["ports"][0]["name"]
    result = inject(source, SETTINGS)
    assert result.outcome == "injected"
    assert "targetPort" in result.warnings[0] or "Services must target" in result.warnings[0]


def test_the_review_carries_the_patch_and_the_uid() -> None:
    review = {"request": {"uid": "abc", "kind": {"kind": "Pod"}, "object": pod()}}
    status, body, outcome = answer(json.dumps(review).encode(), SETTINGS)
    assert (status, outcome) == (200, "injected")
    response = body["response"]
    assert response["uid"] == "abc"
    assert response["allowed"] is True
    patch = json.loads(base64.b64decode(response["patch"]))
    assert patch == inject(pod(), SETTINGS).patch


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"null",
        b'{"request": []}',
        b'{"request": {"uid": ""}}',
        "\u00e9".encode("latin-1"),
    ],
)
def test_malformed_reviews_get_a_400(body: bytes) -> None:
    status, payload, outcome = answer(body, SETTINGS)
    assert (status, outcome) == (400, "malformed")
    assert payload["error"]


def test_an_unreadable_pod_is_admitted() -> None:
    review = {
        "request": {"uid": "u", "kind": {"kind": "Pod"}, "object": {"spec": {"containers": [1]}}}
    }
    status, body, outcome = answer(json.dumps(review).encode(), SETTINGS)
    assert (status, outcome) == (200, "unreadable")
    assert body["response"]["allowed"] is True
    assert "patch" not in body["response"]


def test_settings_refuse_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("image: x\nlistenPrt: 1\n")
    with pytest.raises(ConfigError, match="listenPrt"):
        load_settings(path)


def test_dry_run_answers_a_review_file(tmp_path: Path) -> None:
    settings = tmp_path / "s.yaml"
    settings.write_text("image: modeltap-sidecar:1\n")
    review = tmp_path / "review.json"
    review.write_text(
        json.dumps({"request": {"uid": "r", "kind": {"kind": "Pod"}, "object": pod()}})
    )
    result = CliRunner().invoke(
        cli, ["webhook", "--settings", str(settings), "--dry-run", str(review)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["response"]["patchType"] == "JSONPatch"
