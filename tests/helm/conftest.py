"""Fixtures for the chart and webhook tests: the real API server, Helm, rendered charts."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import service_env
from tests.helm.kube import Kube

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "modeltap"
CRDS = sorted((Path(__file__).parent / "crds").glob("*.yaml"))
VALUES = Path(__file__).parent / "values"
KUBE_VERSION = "1.34.0"


@pytest.fixture(scope="session")
def kube() -> Kube:
    """The real kube-apiserver (scripts/services.sh start kube), with the CRDs installed."""
    client = Kube(
        service_env("MONITOR_TEST_KUBE_URL"), Path(service_env("MONITOR_TEST_KUBE_CONFIG"))
    )
    client.install_crds(CRDS)
    return client


@pytest.fixture(scope="session")
def helm() -> str:
    """The helm binary scripts/services.sh built."""
    return service_env("MONITOR_TEST_HELM")


def run_helm(helm: str, *args: str) -> str:
    """Run helm; its stderr is the failure message."""
    result = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def render(
    helm: str,
    values: Sequence[Path] = (),
    *,
    namespace: str = "modeltap",
    kube_version: str = KUBE_VERSION,
    sets: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The objects of `helm template` with these values files."""
    args = ["template", "modeltap", str(CHART), "--namespace", namespace]
    args += ["--kube-version", kube_version]
    for path in values:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return [doc for doc in yaml.safe_load_all(run_helm(helm, *args)) if doc]
