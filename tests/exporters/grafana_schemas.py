"""The strict Grafana 11.6 JSON schemas (tests/exporters/schemas/grafana), as validators."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parent / "schemas" / "grafana"


@cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.jsonschema.json").read_text())
    matcher = loaded.get("definitions", {}).get("MatcherConfig")
    if matcher is not None:
        # Grafana's CUE declares a matcher's options as any value (`options?: _`); the JSON
        # schema export made that an object, yet the field matchers byFrameRefID, byName and
        # byRegexp take a string, which is what the SDK's own override_by_query writes.
        # Only that one property is widened: object or string, nothing else.
        matcher = {**matcher, "properties": {**matcher["properties"]}}
        matcher["properties"]["options"] = {
            "anyOf": [matcher["properties"]["options"], {"type": "string"}]
        }
        loaded = {**loaded, "definitions": {**loaded["definitions"], "MatcherConfig": matcher}}
    return loaded


def validator(name: str, definition: str | None = None) -> jsonschema.Draft7Validator:
    """A validator for a file's top-level type, or for one of its definitions."""
    document = schema(name)
    target = document if definition is None else {**document, "$ref": f"#/definitions/{definition}"}
    return jsonschema.Draft7Validator(target)


def problems(value: Any, name: str, definition: str | None = None) -> list[str]:
    found = validator(name, definition).iter_errors(value)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def dashboard_problems(board: dict[str, Any]) -> Iterator[str]:
    """The dashboard, then each panel's options, field config and queries, strictly."""
    yield from problems(board, "dashboard")
    for panel in board.get("panels", []):
        kind = panel["type"].replace("-", "")  # state-timeline is statetimeline.jsonschema
        where = f"panel {panel.get('title')!r} ({kind})"
        definitions = schema(kind)["definitions"]
        if "options" in panel:
            yield from (f"{where} options {p}" for p in problems(panel["options"], kind, "Options"))
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom is not None:
            assert "FieldConfig" in definitions, f"{where}: custom field config for {kind}"
            yield from (f"{where} custom {p}" for p in problems(custom, kind, "FieldConfig"))
        for target in panel.get("targets", []):
            yield from (f"{where} query {p}" for p in problems(target, "prometheus"))
