"""A small client for the real kube-apiserver the tests run against (scripts/services.sh).

Just what the chart and webhook tests need: server-side apply with strict field
validation, create, get, delete, and waiting for a CRD to be served. Over the standard
library, pinning the API server's own certificate, authenticated by the static token.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

Json = dict[str, Any]
# Resource paths of the kinds the chart renders: (apiVersion, kind) -> (plural, namespaced).
PLURALS = {
    "ConfigMap": ("configmaps", True),
    "Secret": ("secrets", True),
    "Service": ("services", True),
    "ServiceAccount": ("serviceaccounts", True),
    "Pod": ("pods", True),
    "Namespace": ("namespaces", False),
    "Deployment": ("deployments", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
    "NetworkPolicy": ("networkpolicies", True),
    "MutatingWebhookConfiguration": ("mutatingwebhookconfigurations", False),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
    "ServiceMonitor": ("servicemonitors", True),
    "PodMonitor": ("podmonitors", True),
    "PrometheusRule": ("prometheusrules", True),
    "Issuer": ("issuers", True),
    "Certificate": ("certificates", True),
}


class ApiError(Exception):
    """The API server refused a request; ``status`` is its HTTP code, ``body`` its Status."""

    def __init__(self, status: int, body: Json) -> None:
        super().__init__(f"{status}: {body.get('message', body)}")
        self.status = status
        self.body = body


class Kube:
    """One API server, by its URL and kubeconfig (for the token and CA)."""

    def __init__(self, url: str, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self.token = config["users"][0]["user"]["token"]
        # The API server's certificate is pinned rather than checked against the clock:
        # kube-apiserver makes it valid for one year from its start, and the suite also
        # runs with the clock moved a year either way (faketime).
        pem = Path(config["clusters"][0]["cluster"]["certificate-authority"]).read_text()
        end = "-----END CERTIFICATE-----"
        self.pinned = ssl.PEM_cert_to_DER_cert(pem.split(end)[0] + end + "\n")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE

    def request(
        self, method: str, path: str, body: Json | None = None, content_type: str = ""
    ) -> Json:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type or "application/json"
        connection = http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=60
        )
        try:
            connection.connect()
            assert isinstance(connection.sock, ssl.SSLSocket)
            if connection.sock.getpeercert(binary_form=True) != self.pinned:
                raise ssl.SSLError(f"{self.host}:{self.port} is not the test API server")
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            warnings = response.headers.get_all("Warning") or []
        finally:
            connection.close()
        result: Json = json.loads(payload or b"{}")
        if response.status >= 400:
            raise ApiError(response.status, result)
        result["_warnings"] = warnings
        return result

    @staticmethod
    def path(document: Json, namespace: str | None = None, *, named: bool = True) -> str:
        """The REST path of ``document`` (its collection when ``named`` is False)."""
        api = document["apiVersion"]
        plural, namespaced = PLURALS[document["kind"]]
        base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
        namespace = document.get("metadata", {}).get("namespace") or namespace
        if namespaced:
            base += f"/namespaces/{namespace or 'default'}"
        base += f"/{plural}"
        return f"{base}/{document['metadata']['name']}" if named else base

    def apply(self, document: Json, namespace: str | None = None) -> Json:
        """Server-side apply, refusing unknown or duplicate fields (fieldValidation=Strict)."""
        query = "?fieldManager=modeltap-tests&force=true&fieldValidation=Strict"
        return self.request(
            "PATCH",
            self.path(document, namespace) + query,
            document,
            content_type="application/apply-patch+yaml",
        )

    def create(self, document: Json, namespace: str | None = None) -> Json:
        return self.request(
            "POST",
            self.path(document, namespace, named=False) + "?fieldValidation=Strict",
            document,
        )

    def get(self, kind: str, api: str, name: str, namespace: str | None = None) -> Json:
        stub = {"apiVersion": api, "kind": kind, "metadata": {"name": name}}
        return self.request("GET", self.path(stub, namespace))

    def delete(self, kind: str, api: str, name: str, namespace: str | None = None) -> None:
        stub = {"apiVersion": api, "kind": kind, "metadata": {"name": name}}
        try:
            self.request("DELETE", self.path(stub, namespace))
        except ApiError as error:
            if error.status != 404:
                raise

    def install_crds(self, paths: list[Path]) -> None:
        """Apply the CRDs and wait until the API server serves their kinds."""
        for path in paths:
            crd = yaml.safe_load(path.read_text())
            self.apply(crd)
        for path in paths:
            name = yaml.safe_load(path.read_text())["metadata"]["name"]
            deadline = time.monotonic() + 60
            while True:
                crd = self.get("CustomResourceDefinition", "apiextensions.k8s.io/v1", name)
                conditions = crd.get("status", {}).get("conditions", [])
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"CRD {name} was not established within 60 s")
                time.sleep(0.2)

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": labels or {}},
            }
        )
