"""An AdmissionReview request in, its response out: the webhook's whole protocol. Never raises.

Every review that carries a uid is answered ``allowed: true``: the injector only ever adds
a sidecar, so refusing a pod it cannot read would turn a monitoring problem into an outage.
Why nothing was injected goes into the response's warnings, which kubectl prints.

>>> from monitor.webhook.settings import InjectionSettings
>>> status, body, outcome = answer(b"{}", InjectionSettings(image="x"))
>>> status, outcome, body["error"][:28]
(400, 'malformed', 'not an AdmissionReview: no r')
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

from monitor.webhook.patch import Injection, inject
from monitor.webhook.settings import InjectionSettings

log = logging.getLogger("modeltap.webhook")

API_VERSION = "admission.k8s.io/v1"
Json = dict[str, Any]


def answer(body: bytes, settings: InjectionSettings) -> tuple[int, Json, str]:
    """(HTTP status, JSON body, outcome) for one POSTed AdmissionReview.

    The outcome (injected, already_injected, skipped, ignored, unreadable, malformed) is
    what the webhook counts in its metrics.
    """
    try:
        review = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return 400, {"error": f"not JSON: {error}"}, "malformed"
    request = review.get("request") if isinstance(review, Mapping) else None
    uid = request.get("uid") if isinstance(request, Mapping) else None
    if not isinstance(request, Mapping) or not isinstance(uid, str) or not uid:
        # Without a uid there is nothing the API server could match an answer to.
        return 400, {"error": "not an AdmissionReview: no request.uid"}, "malformed"
    kind = request.get("kind")
    pod = request.get("object")
    if not isinstance(kind, Mapping) or kind.get("kind") != "Pod" or not isinstance(pod, Mapping):
        return 200, _response(uid, Injection("skipped")), "ignored"
    try:
        injection = inject(pod, settings)
    except Exception:  # any pod the API server let through must still be admitted
        log.exception("could not read pod %s; admitted without the sidecar", _name(request))
        warning = "modeltap sidecar not injected: the webhook could not read this pod"
        return 200, _response(uid, Injection("skipped", warnings=[warning])), "unreadable"
    if injection.outcome == "injected":
        log.info("injected the sidecar into %s", _name(request))
    elif injection.warnings:
        log.info("%s: %s", _name(request), "; ".join(injection.warnings))
    return 200, _response(uid, injection), injection.outcome


def _response(uid: str, injection: Injection) -> Json:
    response: Json = {"uid": uid, "allowed": True}
    if injection.patch:
        response["patchType"] = "JSONPatch"
        patch = json.dumps(injection.patch, separators=(",", ":")).encode()
        response["patch"] = base64.b64encode(patch).decode()
    if injection.warnings:
        response["warnings"] = injection.warnings
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def _name(request: Mapping[str, Any]) -> str:
    pod = request.get("object") or {}
    metadata = pod.get("metadata") if isinstance(pod, Mapping) else None
    name = request.get("name") or (metadata or {}).get("generateName") or "(unnamed)"
    return f"{request.get('namespace') or '?'}/{name}"
