"""The layers hold: the core imports nothing above it, the middle packages only the core,
and nothing but tests and benchmarks imports the ``monitor`` command."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.layers import broken, imports

ROOT = Path(__file__).resolve().parents[1]


def test_no_import_runs_against_the_layers() -> None:
    edges = imports(ROOT)
    assert broken(edges) == []
    # And the check sees imports at all (an empty tree would pass it trivially).
    assert edges[("collector", "modeltap")] > 10
    assert edges[("monitor", "detectors")] > 5


def test_the_check_names_each_kind_of_breach() -> None:
    edges = Counter(
        {
            ("modeltap", "detectors"): 1,
            ("collector", "exporters"): 2,
            ("detectors", "monitor"): 3,
            ("tests", "monitor"): 9,
            ("monitor", "collector"): 4,
        }
    )
    assert broken(edges) == [
        "collector/ imports exporters/ (2x); they share only the core",
        "detectors/ imports the application monitor/ (3x)",
        "the core modeltap/ imports detectors/ (1x)",
    ]
