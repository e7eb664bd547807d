"""examples/github-actions: the users' CI gate is a valid GitHub workflow, and its
`monitor check` step does what it says on the example's own data.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "github-actions"
WORKFLOW = EXAMPLE / ".github" / "workflows" / "model-gate.yml"
BIN = Path(sys.executable).parent


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def workflow() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return document


def test_the_workflow_is_valid_against_the_github_workflow_schema() -> None:
    result = schema_check(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_refuses_a_broken_workflow(tmp_path: Path) -> None:
    broken = workflow()
    broken["jobs"]["check"]["runs_on"] = broken["jobs"]["check"].pop("runs-on")
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert schema_check(path).returncode != 0


def test_the_image_is_built_only_after_the_gate_and_the_report_is_always_kept() -> None:
    jobs = workflow()["jobs"]
    assert jobs["image"]["needs"] == "check"
    upload = next(s for s in jobs["check"]["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "modeltap-check.xml"


def checkout(tmp_path: Path) -> Path:
    """A user's repository as the runner checks it out: the example's files (linked)."""
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("modeltap.yaml", "data"):
        (work / name).symlink_to(EXAMPLE / name)
    return work


def run_gate(directory: Path, candidate: Path) -> tuple[int, ET.Element]:
    """The workflow's `monitor check` step, run by bash as a runner would, in ``directory``."""
    steps = workflow()["jobs"]["check"]["steps"]
    (step,) = [step for step in steps if "monitor check" in step.get("run", "")]
    env = os.environ | workflow()["env"] | {"CANDIDATE": str(candidate)}
    env.pop("MONITOR_CONFIG", None)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=directory, env=env, capture_output=True,
        text=True, check=False, timeout=300,
    )  # fmt: skip
    report = directory / "modeltap-check.xml"
    assert report.exists(), result.stderr
    return result.returncode, ET.parse(report).getroot()


def test_the_gate_passes_on_the_example_data(tmp_path: Path) -> None:
    code, report = run_gate(checkout(tmp_path), EXAMPLE / "data" / "candidate.csv")
    assert code == 0
    assert report.tag == "testsuite"
    assert int(report.get("tests", "0")) >= 10
    assert report.get("failures") == "0"


def test_the_gate_fails_on_drifted_data_and_says_which_check_failed(tmp_path: Path) -> None:
    rows = list(csv.DictReader((EXAMPLE / "data" / "candidate.csv").open()))
    rng = random.Random(3)
    for row in rows:  # the callers got twenty years older
        row["age"] = f"{float(row['age']) + 20 + rng.random():.1f}"
    drifted = tmp_path / "drifted.csv"
    with drifted.open("w", newline="") as output:
        writer = csv.DictWriter(output, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    code, report = run_gate(checkout(tmp_path), drifted)
    assert code == 1
    failed = [case for case in report.iter("testcase") if case.find("failure") is not None]
    assert "age" in {case.get("name") for case in failed}
