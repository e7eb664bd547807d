"""`monitor webhook` registered with the chart's MutatingWebhookConfiguration on the real
API server (by url + caBundle, as envtest does), injecting into pods created through it.

The namespace enforces Pod Security "restricted", which the API server checks after the
mutation: the injected sidecar must pass it on its own.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from tests.helm.certs import Authority, mount_secret
from tests.helm.conftest import render
from tests.helm.kube import ApiError, Kube

pytestmark = pytest.mark.integration

ADMISSION = "admissionregistration.k8s.io/v1"
Json = dict[str, Any]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Webhook:
    """One running `monitor webhook` process and where it serves."""

    process: subprocess.Popen[bytes]
    port: int
    admin_port: int
    tls: Path
    log: Path

    def metric(self, outcome: str) -> float:
        url = f"http://127.0.0.1:{self.admin_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        for line in text.splitlines():
            if line.startswith(f'modeltap_webhook_reviews_total{{outcome="{outcome}"}}'):
                return float(line.split()[-1])
        return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)


def start_webhook(directory: Path, settings: Path, authority: Authority) -> Webhook:
    tls = directory / "tls"
    tls.mkdir()
    cert, key, _serial = authority.issue()
    mount_secret(tls, cert, key, 1)
    port, admin = free_port(), free_port()
    log = directory / "webhook.log"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "monitor", "webhook", f"--settings={settings}",
            f"--cert-file={tls / 'tls.crt'}", f"--key-file={tls / 'tls.key'}",
            f"--listen=127.0.0.1:{port}", f"--metrics-listen=127.0.0.1:{admin}",
            "--reload-every=0.2",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    webhook = Webhook(process, port, admin, tls, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1).close()
            return webhook
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"monitor webhook did not start:\n{log.read_text()}") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def chart(helm: str) -> tuple[Json, Path]:
    """The chart's webhook configuration and a file of its rendered injector settings."""
    objects = render(helm)
    webhook = next(o for o in objects if o["kind"] == "MutatingWebhookConfiguration")
    settings = next(
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-settings")
    )
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"injector-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(settings["data"]["injector.yaml"])
    return webhook, path


def register(kube: Kube, chart_webhook: Json, name: str, port: int, ca: bytes) -> None:
    """The chart's configuration, pointed at 127.0.0.1:port instead of its Service."""
    document = copy.deepcopy(chart_webhook)
    document["metadata"] = {"name": name}
    hook = document["webhooks"][0]
    hook["clientConfig"] = {
        "url": f"https://127.0.0.1:{port}/mutate",
        "caBundle": base64.b64encode(ca).decode(),
    }
    kube.apply(document)
    # The API server picks up webhook configurations from its informer, not at once.
    time.sleep(1.5)


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority.new()


@pytest.fixture(scope="module")
def restricted(kube: Kube) -> str:
    name = f"models-{uuid.uuid4().hex[:6]}"
    kube.namespace(
        name,
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        },
    )
    return name


@pytest.fixture(scope="module")
def webhook(
    kube: Kube,
    chart: tuple[Json, Path],
    authority: Authority,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Webhook]:
    running = start_webhook(tmp_path_factory.mktemp("webhook"), chart[1], authority)
    name = f"a-modeltap-{uuid.uuid4().hex[:6]}"
    register(kube, chart[0], name, running.port, authority.pem)
    yield running
    kube.delete("MutatingWebhookConfiguration", ADMISSION, name)
    running.stop()


def model_pod(name: str, *, inject: bool = True, annotations: dict[str, str] | None = None) -> Json:
    """A model server pod that passes Pod Security "restricted" by itself."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "churn"}
            | ({"modeltap.io/inject": "true"} if inject else {}),
            "annotations": annotations or {},
        },
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "model",
                    "image": "example/churn-model:1",
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},
                    ],
                    "readinessProbe": {"httpGet": {"path": "/v1/models/churn", "port": "http"}},
                    "livenessProbe": {"tcpSocket": {"port": "http"}},
                    "startupProbe": {"grpc": {"port": 8081}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsUser": 1000,
                    },
                }
            ],
        },
    }


def sidecars(pod: Json) -> list[Json]:
    spec = pod["spec"]
    return [
        c
        for c in (*spec.get("initContainers", []), *spec["containers"])
        if c["name"] == "modeltap-sidecar"
    ]


def test_a_labelled_pod_is_stored_with_the_sidecar_once(
    kube: Kube, webhook: Webhook, restricted: str
) -> None:
    before = webhook.metric("injected")
    annotations = {"modeltap.io/version": "v3", "modeltap.io/sample-rate": "0.25"}
    stored = kube.create(model_pod("churn-0", annotations=annotations), restricted)

    assert webhook.metric("injected") == before + 1
    [sidecar] = sidecars(stored)
    # A native sidecar: an init container that keeps running, ready before the model.
    assert sidecar in stored["spec"]["initContainers"]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/healthz"
    # Port takeover: the name "http" (the Service's targetPort) is now the sidecar's port.
    model = stored["spec"]["containers"][0]
    assert [p.get("name") for p in model["ports"]] == [None, "grpc"]
    assert {"name": "http", "containerPort": 8700, "protocol": "TCP"} in sidecar["ports"]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["MONITOR_SIDECAR__UPSTREAM"] == "http://127.0.0.1:8080"
    assert env["MONITOR_SIDECAR__MODEL"] == "churn"
    assert env["MONITOR_SIDECAR__MODEL_VERSION"] == "v3"
    assert env["MONITOR_MODELS__0__CAPTURE__SAMPLE_RATE"] == "0.25"
    # The model's probes still reach the model itself, by number.
    assert model["readinessProbe"]["httpGet"]["port"] == 8080
    assert model["readinessProbe"]["httpGet"]["path"] == "/v1/models/churn"
    assert model["livenessProbe"]["tcpSocket"]["port"] == 8080
    assert model["startupProbe"]["grpc"]["port"] == 8081
    assert {"name": "modeltap-spool", "emptyDir": {"sizeLimit": "512Mi"}} in stored["spec"][
        "volumes"
    ]
    # Restricted on its own (the API server enforced it on the mutated pod, too).
    context = sidecar["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["readOnlyRootFilesystem"] is True


def test_an_unlabelled_pod_never_reaches_the_webhook(
    kube: Kube, webhook: Webhook, restricted: str
) -> None:
    before = {o: webhook.metric(o) for o in ("injected", "already_injected", "skipped")}
    submitted = model_pod("plain-0", inject=False)
    stored = kube.create(submitted, restricted)
    assert {o: webhook.metric(o) for o in before} == before
    assert "initContainers" not in stored["spec"]
    assert stored["spec"]["containers"][0]["ports"][0]["name"] == "http"
    assert stored["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] == "http"
    assert [v["name"] for v in stored["spec"].get("volumes", [])] == []


def test_a_pod_that_cannot_be_injected_is_admitted_with_a_warning(
    kube: Kube, webhook: Webhook, restricted: str
) -> None:
    pod = model_pod("odd-0", annotations={"modeltap.io/sample-rate": "lots"})
    stored = kube.create(pod, restricted)
    assert sidecars(stored) == []
    assert any("sample-rate" in warning for warning in stored["_warnings"])


class _Labeller(BaseHTTPRequestHandler):
    """Another mutating webhook after ours: it adds an annotation, so the API server calls
    ours again (reinvocationPolicy IfNeeded)."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        patch = [{"op": "add", "path": "/metadata/labels/labelled-by-other", "value": "yes"}]
        body = json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": review["request"]["uid"],
                    "allowed": True,
                    "patchType": "JSONPatch",
                    "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_reinvocation_does_not_inject_twice(
    kube: Kube,
    webhook: Webhook,
    chart: tuple[Json, Path],
    restricted: str,
    authority: Authority,
    tmp_path: Path,
) -> None:
    cert, key, _ = authority.issue()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Labeller)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    other = copy.deepcopy(chart[0])
    other["webhooks"][0]["name"] = "label.other.example"
    # Sorted after ours (a-modeltap-…), so it runs second and changes the pod after us.
    name = f"b-other-{uuid.uuid4().hex[:6]}"
    try:
        register(kube, other, name, server.server_address[1], authority.pem)
        injected, again = webhook.metric("injected"), webhook.metric("already_injected")
        stored = kube.create(model_pod("churn-1"), restricted)
        assert stored["metadata"]["labels"]["labelled-by-other"] == "yes"
        assert webhook.metric("injected") == injected + 1
        # Called a second time, it saw its own sidecar and left the pod alone.
        assert webhook.metric("already_injected") == again + 1
        assert len(sidecars(stored)) == 1
        assert [p.get("name") for p in stored["spec"]["containers"][0]["ports"]] == [None, "grpc"]
    finally:
        kube.delete("MutatingWebhookConfiguration", ADMISSION, name)
        server.shutdown()


def test_a_malformed_review_is_answered_and_the_webhook_keeps_serving(
    webhook: Webhook, authority: Authority, tmp_path: Path
) -> None:
    (tmp_path / "ca.pem").write_bytes(authority.pem)
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))

    def post(body: bytes) -> tuple[int, Json]:
        request = urllib.request.Request(
            f"https://127.0.0.1:{webhook.port}/mutate", data=body, method="POST"
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, body = post(b"\xff{not json")
    assert status == 400
    assert "not JSON" in body["error"]
    status, body = post(b'{"request": {"kind": {"kind": "Pod"}}}')
    assert status == 400
    review: Json = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "u-1", "kind": {"kind": "Pod"}, "object": {"spec": {"containers": 7}}},
    }
    status, body = post(json.dumps(review).encode())
    assert status == 200
    assert body["response"]["uid"] == "u-1"
    assert body["response"]["allowed"] is True
    assert "patch" not in body["response"]
    assert webhook.process.poll() is None
    good = copy.deepcopy(review)
    good["request"]["object"] = model_pod("x")
    status, body = post(json.dumps(good).encode())
    assert status == 200
    assert body["response"]["patchType"] == "JSONPatch"


def served_serial(port: int, ca: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@pytest.mark.real_clock
def test_a_rotated_certificate_is_served_without_a_restart(
    kube: Kube, webhook: Webhook, authority: Authority, restricted: str, tmp_path: Path
) -> None:
    (tmp_path / "ca.pem").write_bytes(authority.pem)
    first = served_serial(webhook.port, tmp_path / "ca.pem")
    cert, key, serial = authority.issue()
    assert serial != first
    mount_secret(webhook.tls, cert, key, 2)
    deadline = time.monotonic() + 15
    while served_serial(webhook.port, tmp_path / "ca.pem") != serial:
        assert time.monotonic() < deadline, "the renewed certificate was never served"
        time.sleep(0.1)
    assert webhook.process.poll() is None
    # And the API server, trusting the same CA, still gets answers.
    stored = kube.create(model_pod("churn-2"), restricted)
    assert len(sidecars(stored)) == 1


def test_with_the_webhook_down_pods_are_still_admitted(
    kube: Kube,
    chart: tuple[Json, Path],
    authority: Authority,
    restricted: str,
    tmp_path: Path,
) -> None:
    down = start_webhook(tmp_path, chart[1], authority)
    name = f"c-down-{uuid.uuid4().hex[:6]}"
    register(kube, chart[0], name, down.port, authority.pem)
    try:
        down.stop()
        started = time.monotonic()
        stored = kube.create(model_pod("churn-3"), restricted)
        # failurePolicy Ignore: admitted, unmodified by this webhook, and without waiting
        # out the timeout (the refused connection fails at once).
        assert time.monotonic() - started < 10
        assert stored["metadata"]["name"] == "churn-3"
    finally:
        kube.delete("MutatingWebhookConfiguration", ADMISSION, name)


def test_with_failure_policy_fail_a_down_webhook_blocks(
    kube: Kube, chart: tuple[Json, Path], authority: Authority, restricted: str
) -> None:
    # The counter-check: the Ignore test above could pass for the wrong reason (the
    # webhook never consulted) unless the same setup with Fail refuses the pod.
    failing = copy.deepcopy(chart[0])
    failing["webhooks"][0]["failurePolicy"] = "Fail"
    name = f"d-fail-{uuid.uuid4().hex[:6]}"
    register(kube, failing, name, free_port(), authority.pem)
    try:
        with pytest.raises(ApiError) as refused:
            kube.create(model_pod("churn-4"), restricted)
        assert refused.value.status == 500
        assert "failed calling webhook" in refused.value.body["message"]
    finally:
        kube.delete("MutatingWebhookConfiguration", ADMISSION, name)


def test_yaml_settings_are_what_the_chart_rendered(chart: tuple[Json, Path]) -> None:
    settings = yaml.safe_load(chart[1].read_text())
    assert settings["image"] == "modeltap-sidecar:0.1.0"
    assert settings["native"] is True
