"""The schema copies under tests/exporters/schemas are the shared reference's, unchanged."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "schemas"
SHARED = Path(__file__).resolve().parents[3] / "shared"
COPIES = [
    *((path, SHARED / "grafana-jsonschema" / path.name) for path in (HERE / "grafana").iterdir()),
    *((path, SHARED / "crds" / path.name) for path in (HERE / "crds").iterdir()),
]


@pytest.mark.parametrize(("copy", "original"), COPIES, ids=lambda p: p.name)
def test_schemas_match_the_shared_reference(copy: Path, original: Path) -> None:
    if not SHARED.is_dir():
        # A clone without ../shared beside it: the copies are what there is to test with.
        assert copy.stat().st_size > 0
        return
    assert filecmp.cmp(copy, original, shallow=False)
