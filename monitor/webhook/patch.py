"""A pod in, the JSON patch (RFC 6902) that adds the capture sidecar out. Pure: no I/O.

Port takeover without iptables or NET_ADMIN: the model container's port ``http`` (say,
8080) loses its name, and the sidecar declares a port of that name on its own number
(8700). A Service whose ``targetPort`` is ``http`` therefore sends traffic to the sidecar,
which forwards it to 127.0.0.1:8080 in the same network namespace. The model's own probes
that named ``http`` are rewritten to the number 8080, so they keep checking the model
directly; the sidecar's readiness (``/readyz``: the model answers through it) joins them.
The patch touches only that port's name, those probes' ports, and adds the container and
its spool volume; a pod that already has the sidecar gets no patch at all.

>>> from monitor.webhook.settings import InjectionSettings
>>> pod = {"spec": {"containers": [{"name": "model", "image": "m",
...        "ports": [{"name": "http", "containerPort": 8080}]}]}}
>>> result = inject(pod, InjectionSettings(image="modeltap-sidecar:1"))
>>> result.outcome, [op["path"] for op in result.patch]
('injected', ['/spec/containers/0/ports/0/name', '/spec/initContainers', '/spec/volumes'])
>>> inject(apply_patch(pod, result.patch), InjectionSettings(image="x")).outcome
'already_injected'
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from monitor.webhook.settings import InjectionSettings, check_quantity, quantity_value

SIDECAR = "modeltap-sidecar"
SPOOL_VOLUME = "modeltap-spool"
SPOOL_DIR = "/var/lib/modeltap/spool"
# Port names are IANA service names: at most 15 characters.
METRICS_PORT_NAME = "mt-metrics"
DEFAULT_PORT_NAME = "modeltap"
PREFIX = "modeltap.io/"
ANNOTATIONS = (
    "model",
    "version",
    "task",
    "upstream-port",
    "listen-port",
    "sink",
    "sample-rate",
    "cpu-request",
    "memory-request",
    "cpu-limit",
    "memory-limit",
)
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")

Outcome = Literal["injected", "already_injected", "skipped"]
Json = dict[str, Any]


@dataclass(frozen=True)
class Injection:
    """What to answer: the patch (empty unless injected) and warnings for the user."""

    outcome: Outcome
    patch: list[Json] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _NotInjectedError(Exception):
    """The pod cannot be injected as asked; the reason is shown to the user as a warning."""


def inject(pod: Mapping[str, Any], settings: InjectionSettings) -> Injection:
    """The patch that adds the sidecar to ``pod`` (a Pod object as JSON), or why not."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    init_containers = list(spec.get("initContainers") or [])
    if any(c.get("name") == SIDECAR for c in (*containers, *init_containers)):
        return Injection("already_injected")
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    try:
        return _inject(
            pod,
            spec=spec,
            containers=containers,
            init_containers=init_containers,
            annotations=annotations,
            settings=settings,
        )
    except _NotInjectedError as reason:
        return Injection("skipped", warnings=[f"modeltap sidecar not injected: {reason}"])


def _inject(
    pod: Mapping[str, Any],
    *,
    spec: Mapping[str, Any],
    containers: list[Json],
    init_containers: list[Json],
    annotations: Mapping[str, str],
    settings: InjectionSettings,
) -> Injection:
    unknown = sorted(
        key.removeprefix(PREFIX)
        for key in annotations
        if key.startswith(PREFIX) and key.removeprefix(PREFIX) not in ANNOTATIONS
    )
    index, port_index = _target(containers, annotations.get(PREFIX + "upstream-port"))
    model_container = containers[index]
    port = model_container["ports"][port_index]
    upstream, name = int(port["containerPort"]), port.get("name")
    listen = _port(annotations, "listen-port", settings.listen_port)
    taken = {
        int(p["containerPort"])
        for c in (*containers, *init_containers)
        for p in c.get("ports") or []
        if "containerPort" in p
    }
    for wanted in (listen, settings.metrics_port):
        if wanted in taken:
            raise _NotInjectedError(
                f"port {wanted} is already used in this pod; set {PREFIX}listen-port"
            )
    if any(v.get("name") == SPOOL_VOLUME for v in spec.get("volumes") or []):
        raise _NotInjectedError(f"the pod already has a volume named {SPOOL_VOLUME}")

    ops: list[Json] = []
    warnings = [f"unknown annotation {PREFIX}{key} is ignored" for key in unknown]
    base = f"/spec/containers/{index}"
    if name:
        ops.append({"op": "remove", "path": f"{base}/ports/{port_index}/name"})
        ops.extend(_renumber_probes(model_container, base, name, upstream))
    else:
        warnings.append(
            f"port {upstream} has no name, so no Service can be pointed at the sidecar by "
            f"it; Services must target the port named {DEFAULT_PORT_NAME}"
        )
    sidecar = sidecar_container(
        settings,
        model=_model_name(pod, annotations, model_container),
        version=annotations.get(PREFIX + "version")
        or _labels(pod).get("app.kubernetes.io/version"),
        task=annotations.get(PREFIX + "task", "classification"),
        upstream_port=upstream,
        port_name=name or DEFAULT_PORT_NAME,
        listen_port=listen,
        sink=annotations.get(PREFIX + "sink"),
        sample_rate=_sample_rate(annotations, settings.sample_rate),
        resources=_resources(annotations, settings),
    )
    if settings.native:
        ops.append(_append("/spec/initContainers", init_containers, sidecar))
    else:
        ops.append(_append("/spec/containers", containers, sidecar))
    volume = {"name": SPOOL_VOLUME, "emptyDir": {"sizeLimit": settings.spool_size_limit}}
    ops.append(_append("/spec/volumes", list(spec.get("volumes") or []), volume))
    return Injection("injected", ops, warnings)


def sidecar_container(
    settings: InjectionSettings,
    *,
    model: str,
    version: str | None,
    task: str,
    upstream_port: int,
    port_name: str,
    listen_port: int,
    sink: str | None,
    sample_rate: float,
    resources: Mapping[str, Mapping[str, str]],
) -> Json:
    """The sidecar container; with ``settings.native`` an init container that keeps running."""
    env: list[Json] = [
        {"name": "MONITOR_SIDECAR__LISTEN", "value": f"0.0.0.0:{listen_port}"},
        {"name": "MONITOR_SIDECAR__METRICS_LISTEN", "value": f"0.0.0.0:{settings.metrics_port}"},
        {"name": "MONITOR_SIDECAR__UPSTREAM", "value": f"http://127.0.0.1:{upstream_port}"},
        {"name": "MONITOR_SIDECAR__MODEL", "value": model},
    ]
    if version:
        env.append({"name": "MONITOR_SIDECAR__MODEL_VERSION", "value": version})
    env.append({"name": "MONITOR_SIDECAR__SPOOL_DIR", "value": SPOOL_DIR})
    env.append(
        {
            "name": "MONITOR_SIDECAR__SHUTDOWN_GRACE",
            "value": f"{settings.shutdown_grace_seconds}s",
        }
    )
    if sink:
        env.append({"name": "MONITOR_SINK__URL", "value": sink})
    elif settings.sink_secret is not None:
        ref = {"name": settings.sink_secret.name, "key": settings.sink_secret.key}
        env.append({"name": "MONITOR_SINK__URL", "valueFrom": {"secretKeyRef": ref}})
    elif settings.sink:
        env.append({"name": "MONITOR_SINK__URL", "value": settings.sink})
    # The sample rate is a per-model capture setting: the sidecar's configuration names
    # this one model, the only one it sees.
    env += [
        {"name": "MONITOR_MODELS__0__NAME", "value": model},
        {"name": "MONITOR_MODELS__0__TASK", "value": task},
        {"name": "MONITOR_MODELS__0__CAPTURE__SAMPLE_RATE", "value": f"{sample_rate:g}"},
    ]
    container: Json = {
        "name": SIDECAR,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["monitor", "sidecar"],
        "ports": [
            {"name": port_name, "containerPort": listen_port, "protocol": "TCP"},
            {"name": METRICS_PORT_NAME, "containerPort": settings.metrics_port, "protocol": "TCP"},
        ],
        "env": env,
        "resources": {kind: dict(values) for kind, values in resources.items() if values},
        # /healthz answers once the proxy listens: the model starts only then. /readyz
        # needs the model, so it must not gate the start (the model would never start).
        "startupProbe": _probe("/healthz", settings.metrics_port, period=1, failures=60),
        "livenessProbe": _probe("/healthz", settings.metrics_port, period=10, failures=3),
        "readinessProbe": _probe("/readyz", settings.metrics_port, period=5, failures=2),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": SPOOL_VOLUME, "mountPath": SPOOL_DIR}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if settings.native:
        container["restartPolicy"] = "Always"
    return container


def apply_patch(document: Mapping[str, Any], patch: Sequence[Mapping[str, Any]]) -> Json:
    """``document`` with the add/remove/replace operations of ``patch`` applied (a copy).

    Enough of RFC 6902 for the patches built here, so tests and `--dry-run` can show the
    result; the API server applies the real thing.

    >>> apply_patch({"a": [1]}, [{"op": "add", "path": "/a/-", "value": 2}])
    {'a': [1, 2]}
    """
    result: Json = copy.deepcopy(dict(document))
    for op in patch:
        *parents, last = [
            part.replace("~1", "/").replace("~0", "~") for part in op["path"].split("/")[1:]
        ]
        target: Any = result
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if op["op"] == "remove":
            del target[int(last) if isinstance(target, list) else last]
        elif isinstance(target, list):
            if last == "-":
                target.append(copy.deepcopy(op["value"]))
            elif op["op"] == "add":
                target.insert(int(last), copy.deepcopy(op["value"]))
            else:
                target[int(last)] = copy.deepcopy(op["value"])
        else:
            target[last] = copy.deepcopy(op["value"])
    return result


def _target(containers: Sequence[Json], wanted: str | None) -> tuple[int, int]:
    """(container, port) indexes of the port to take over: the annotated one, or the first."""
    for index, container in enumerate(containers):
        for port_index, port in enumerate(container.get("ports") or []):
            if "containerPort" not in port or port.get("protocol", "TCP") != "TCP":
                continue
            if wanted is None or wanted in (port.get("name"), str(port["containerPort"])):
                return index, port_index
    if wanted is None:
        raise _NotInjectedError(
            f"no container declares a TCP port to take over; set {PREFIX}upstream-port"
        )
    raise _NotInjectedError(
        f"no container declares the port {wanted!r} named by {PREFIX}upstream-port"
    )


def _renumber_probes(container: Json, base: str, name: str, number: int) -> list[Json]:
    """Ops that point the container's probes and hooks at ``number`` where they named it."""
    ops: list[Json] = []
    places = [(probe, container.get(probe)) for probe in _PROBES]
    lifecycle = container.get("lifecycle") or {}
    places += [(f"lifecycle/{hook}", lifecycle.get(hook)) for hook in ("postStart", "preStop")]
    for path, handler in places:
        if not isinstance(handler, Mapping):
            continue
        for kind in ("httpGet", "tcpSocket"):
            action = handler.get(kind)
            if isinstance(action, Mapping) and action.get("port") == name:
                ops.append({"op": "replace", "path": f"{base}/{path}/{kind}/port", "value": number})
    return ops


def _probe(path: str, port: int, *, period: int, failures: int) -> Json:
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def _append(path: str, existing: Sequence[Any], value: Json) -> Json:
    # "add" of a whole list when there is none: "/-" needs the list to exist.
    if existing:
        return {"op": "add", "path": f"{path}/-", "value": value}
    return {"op": "add", "path": path, "value": [value]}


def _labels(pod: Mapping[str, Any]) -> Mapping[str, str]:
    return (pod.get("metadata") or {}).get("labels") or {}


def _model_name(pod: Mapping[str, Any], annotations: Mapping[str, str], container: Json) -> str:
    labels = _labels(pod)
    for candidate in (
        annotations.get(PREFIX + "model"),
        labels.get("app.kubernetes.io/name"),
        labels.get("app"),
    ):
        if candidate:
            return candidate
    return str(container.get("name") or "model")


def _port(annotations: Mapping[str, str], key: str, default: int) -> int:
    text = annotations.get(PREFIX + key)
    if text is None:
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _NotInjectedError(f"{PREFIX}{key} must be a port number, got {text!r}")
    return int(text)


def _sample_rate(annotations: Mapping[str, str], default: float) -> float:
    text = annotations.get(PREFIX + "sample-rate")
    if text is None:
        return default
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise _NotInjectedError(f"{PREFIX}sample-rate must be a number from 0 to 1, got {text!r}")
    return rate


def _resources(
    annotations: Mapping[str, str], settings: InjectionSettings
) -> dict[str, dict[str, str]]:
    chosen = {
        "requests": settings.resources.requests.as_dict(),
        "limits": settings.resources.limits.as_dict(),
    }
    for kind, key in (("requests", "request"), ("limits", "limit")):
        for resource in ("cpu", "memory"):
            text = annotations.get(f"{PREFIX}{resource}-{key}")
            if text is None:
                continue
            try:
                chosen[kind][resource] = check_quantity(text)
            except ValueError as error:
                raise _NotInjectedError(f"{PREFIX}{resource}-{key}: {error}") from None
    for resource, limit in chosen["limits"].items():
        request = chosen["requests"].get(resource)
        # The API server refuses a pod whose request exceeds its limit: that would block it.
        if request is not None and quantity_value(request) > quantity_value(limit):
            raise _NotInjectedError(f"the {resource} request {request} is above its limit {limit}")
    return chosen
