"""The anchor environment: a missing one fails the known-answer tests with what to run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.detectors.anchors import anchor_python


def test_missing_anchor_environment_fails_with_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MONITOR_STATE_DIR", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"scripts/anchors\.sh"):
        anchor_python()


def test_anchor_environment_is_there() -> None:
    assert anchor_python().exists()
