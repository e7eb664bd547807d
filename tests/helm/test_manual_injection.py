"""The chart's named template for manual injection renders the container the webhook
injects: one sidecar, whichever way it gets into the pod."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from monitor.webhook.patch import sidecar_container
from monitor.webhook.settings import InjectionSettings
from tests.helm.conftest import CHART, KUBE_VERSION, run_helm

POD = """apiVersion: v1
kind: Pod
metadata: {name: churn}
spec:
  initContainers:
    {{- include "modeltap.sidecar" (dict "image" "modeltap-sidecar:0.1.0" "model" "churn"
        "version" "v3" "upstreamPort" 8080 "portName" "http" "sampleRate" 0.25
        "sink" "kafka://kafka:9092/modeltap.events" "native" NATIVE) | nindent 4 }}
  containers: [{name: model, image: m, ports: [{containerPort: 8080}]}]
  volumes:
    {{- include "modeltap.sidecarVolume" (dict) | nindent 4 }}
"""


@pytest.mark.parametrize("native", [True, False])
def test_the_named_template_is_the_injected_container(
    helm: str, tmp_path: Path, native: bool
) -> None:
    # A user's chart with modeltap as an (unpacked) dependency, including the template.
    parent = tmp_path / "app"
    (parent / "templates").mkdir(parents=True)
    (parent / "Chart.yaml").write_text("apiVersion: v2\nname: app\nversion: 0.0.1\n")
    (parent / "templates" / "pod.yaml").write_text(POD.replace("NATIVE", str(native).lower()))
    shutil.copytree(CHART, parent / "charts" / "modeltap")
    rendered = [
        doc
        for doc in yaml.safe_load_all(
            run_helm(helm, "template", "app", str(parent), "--kube-version", KUBE_VERSION)
        )
        if doc and doc["kind"] == "Pod"
    ]
    [pod] = rendered
    [container] = pod["spec"]["initContainers"]
    settings = InjectionSettings(image="modeltap-sidecar:0.1.0", native=native)
    expected = sidecar_container(
        settings,
        model="churn",
        version="v3",
        task="classification",
        upstream_port=8080,
        port_name="http",
        listen_port=settings.listen_port,
        sink="kafka://kafka:9092/modeltap.events",
        sample_rate=0.25,
        resources={
            "requests": settings.resources.requests.as_dict(),
            "limits": settings.resources.limits.as_dict(),
        },
    )
    assert container == expected
    assert pod["spec"]["volumes"] == [
        {"name": "modeltap-spool", "emptyDir": {"sizeLimit": settings.spool_size_limit}}
    ]
