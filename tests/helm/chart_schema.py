"""helm/modeltap/values.schema.json: the chart's own keys written here, and under
``config`` the modeltap configuration's schema derived from ``MonitorConfig``, so the
values take exactly the keys the YAML file takes and a typo anywhere fails the install.

Run ``python -m tests.helm.chart_schema`` after changing either; a test keeps the file
current. Secrets (passwords, tokens, keys) are taken out of ``config``: they come only
from existing Secrets (values ``secrets.*``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from modeltap.config import MonitorConfig

PATH = Path(__file__).resolve().parents[2] / "helm" / "modeltap" / "values.schema.json"
Json = dict[str, Any]
# A URL with user:password@ in it: those go into a Secret (secrets.storageUrl).
_CREDENTIALS = "://[^/@]*:[^/@]*@"


def obj(properties: Json, required: tuple[str, ...] = ()) -> Json:
    """An object schema that refuses keys it does not name."""
    schema: Json = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


STRING: Json = {"type": "string"}
BOOL: Json = {"type": "boolean"}
PORT: Json = {"type": "integer", "minimum": 1, "maximum": 65535}
COUNT: Json = {"type": "integer", "minimum": 0}
QUANTITY: Json = {
    "type": ["string", "number"],
    "pattern": "^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$",
}
RESOURCES = obj(
    {
        "requests": obj({"cpu": QUANTITY, "memory": QUANTITY}),
        "limits": obj({"cpu": QUANTITY, "memory": QUANTITY}),
    }
)
SECRET_REF = obj({"name": STRING, "key": {"type": "string", "minLength": 1}}, ("name", "key"))
LABELS: Json = {"type": "object", "additionalProperties": STRING}
PDB = obj(
    {
        "enabled": BOOL,
        "minAvailable": {"type": ["integer", "string"]},
        "maxUnavailable": {"type": ["integer", "string"]},
    }
)
SCHEDULING: Json = {
    "nodeSelector": LABELS,
    "tolerations": {"type": "array", "items": {"type": "object"}},
    "affinity": {"type": "object"},
}
IMAGE = obj(
    {
        "repository": {"type": "string", "minLength": 1},
        "tag": STRING,
        "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    },
    ("repository",),
)


def daemon(extra: Json | None = None) -> Json:
    """One of collect, detect, serve."""
    return obj(
        {
            "enabled": BOOL,
            "replicas": COUNT,
            "resources": RESOURCES,
            "pdb": PDB,
            **SCHEDULING,
            **(extra or {}),
        }
    )


def config_schema() -> tuple[Json, Json]:
    """(schema of values.config, its $defs), from MonitorConfig."""
    schema = MonitorConfig.model_json_schema(mode="validation")
    definitions = schema.pop("$defs")
    for definition in definitions.values():
        _clean(definition)
    _clean(schema)
    for section, key in (("StorageConfig", "url"), ("SinkConfig", "url")):
        definitions[section]["properties"][key]["not"] = {"pattern": _CREDENTIALS}
    return schema, definitions


def _clean(schema: Json) -> None:
    """Drop what Helm's validator need not see; durations and sizes also take "5m", "10MiB"."""
    for key in ("title", "default", "format"):
        schema.pop(key, None)
    properties = schema.get("properties", {})
    for name, prop in list(properties.items()):
        if _is_secret(prop):
            del properties[name]
            continue
        if prop.get("format") == "duration":
            prop["type"] = ["string", "number"]
        if name.endswith("_bytes") and prop.get("type") == "integer":
            prop["type"] = ["integer", "string"]
            prop.pop("minimum", None)
        _clean(prop)
    for key in ("anyOf", "allOf", "oneOf"):
        for option in schema.get(key, []):
            if option.get("format") == "duration":
                option["type"] = ["string", "number"]
            _clean(option)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            if schema[key].get("format") == "duration":
                schema[key]["type"] = ["string", "number"]
            _clean(schema[key])


def _is_secret(prop: Json) -> bool:
    options = prop.get("anyOf", [prop])
    return any(option.get("writeOnly") for option in options)


def values_schema() -> Json:
    """The whole values.schema.json."""
    config, definitions = config_schema()
    secret_refs = obj(dict.fromkeys(("storageUrl", "kafkaSaslPassword", "labelsToken"), SECRET_REF))
    injector = obj(
        {
            "enabled": BOOL,
            "replicas": COUNT,
            "failurePolicy": {"enum": ["Ignore", "Fail"]},
            "timeoutSeconds": {"type": "integer", "minimum": 1, "maximum": 30},
            "excludeNamespaces": {"type": "array", "items": STRING},
            "certReloadSeconds": {"type": "number", "minimum": 0.1},
            "tls": obj(
                {
                    "certManager": obj({"enabled": BOOL, "issuerRef": {"type": "object"}}),
                    "validityDays": {"type": "integer", "minimum": 1},
                }
            ),
            "resources": RESOURCES,
            "pdb": PDB,
            **SCHEDULING,
            "sidecar": obj(
                {
                    "image": IMAGE,
                    "native": BOOL,
                    "listenPort": PORT,
                    "metricsPort": PORT,
                    "sink": {"type": "string", "not": {"pattern": _CREDENTIALS}},
                    "sinkSecret": SECRET_REF,
                    "sampleRate": {"type": "number", "minimum": 0, "maximum": 1},
                    "spoolSizeLimit": QUANTITY,
                    "shutdownGraceSeconds": {"type": "integer", "minimum": 1, "maximum": 3600},
                    "resources": RESOURCES,
                }
            ),
        }
    )
    monitor = obj({"enabled": BOOL, "interval": STRING, "labels": LABELS})
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "modeltap chart values",
        **obj(
            {
                # Helm adds it to the values of a chart used as a dependency.
                "global": {"type": "object"},
                "nameOverride": STRING,
                "fullnameOverride": STRING,
                "image": IMAGE,
                "imagePullSecrets": {"type": "array", "items": obj({"name": STRING})},
                "config": config,
                "secrets": secret_refs,
                "podSecurity": obj(
                    {
                        "runAsUser": {"type": "integer", "minimum": 1},
                        "fsGroup": {"type": "integer", "minimum": 1},
                    }
                ),
                "serviceAccount": obj({"create": BOOL, "name": STRING, "annotations": LABELS}),
                "collect": daemon(),
                "detect": daemon(),
                "serve": daemon(
                    {
                        "service": obj(
                            {
                                "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                                "port": PORT,
                            }
                        )
                    }
                ),
                "injector": injector,
                "metrics": obj(
                    {
                        "serviceMonitor": monitor,
                        "podMonitor": monitor,
                        "prometheusRule": obj({"enabled": BOOL, "labels": LABELS}),
                    }
                ),
                "dashboards": obj(
                    {"enabled": BOOL, "label": STRING, "labelValue": STRING, "annotations": LABELS}
                ),
                "networkPolicy": obj(
                    {"enabled": BOOL, "serveFrom": {"type": "array", "items": {"type": "object"}}}
                ),
            }
        ),
        "$defs": definitions,
    }


def text() -> str:
    """The file's contents."""
    return json.dumps(values_schema(), indent=2) + "\n"


if __name__ == "__main__":
    PATH.write_text(text(), encoding="utf-8")
    sys.stderr.write(f"wrote {PATH}\n")
