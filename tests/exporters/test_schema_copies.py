"""The schema copies under tests/exporters/schemas are the shared reference's, unchanged."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

HERE = Path(__file__).parent / "schemas"
SHARED = Path(__file__).resolve().parents[3] / "shared"
COPIES = [
    *((path, SHARED / "grafana-jsonschema" / path.name) for path in (HERE / "grafana").iterdir()),
    *((path, SHARED / "crds" / path.name) for path in (HERE / "crds").iterdir()),
]


@pytest.mark.parametrize(("copy", "original"), COPIES, ids=lambda p: p.name)
def test_schemas_match_the_shared_reference(copy: Path, original: Path) -> None:
    if SHARED.is_dir():
        assert filecmp.cmp(copy, original, shallow=False)
    # With or without ../shared beside the clone, a copy must itself be a usable schema.
    if copy.suffix == ".json":
        jsonschema.Draft7Validator.check_schema(json.loads(copy.read_text()))
    else:
        crd = yaml.safe_load(copy.read_text())
        assert crd["kind"] == "CustomResourceDefinition"
        # OpenAPI v3 schemas use Go regex syntax ((?i)...), so no JSON-Schema meta-check here.
        assert crd["spec"]["names"]["kind"] == "PrometheusRule"
        assert all(
            "spec" in v["schema"]["openAPIV3Schema"]["properties"] for v in crd["spec"]["versions"]
        )
