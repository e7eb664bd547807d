"""`monitor check`: the detectors over two files, as a CI gate (CliRunner, real files)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from monitor.cli import cli

CONFIG = """
models:
  - name: churn
    task: classification
    positive_class: 1
    payload: {instance_id_field: id}
    features:
      - {name: age, type: numerical}
      - {name: plan, type: categorical}
    thresholds: {accuracy_min: 0.8}
"""


def table(
    size: int, seed: int, *, age: float = 40.0, pro: float = 0.3, accuracy: float = 0.9
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, size=size)
    predicted = np.where(rng.uniform(size=size) < accuracy, truth, 1 - truth)
    return pd.DataFrame(
        {
            "id": [f"c{seed}-{i}" for i in range(size)],
            "age": rng.normal(age, 10, size=size).round(1),
            "plan": rng.choice(["basic", "pro"], p=[1 - pro, pro], size=size),
            "prediction": predicted,
            "score": np.where(predicted == 1, 0.8, 0.2),
            "truth": truth,
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("ref.csv", "same.parquet", "moved.jsonl", "c.yaml")}
    reference = table(3000, 1)
    reference.drop(columns="truth").to_csv(paths["ref.csv"], index=False)
    table(1500, 2).drop(columns="truth").to_parquet(paths["same.parquet"])
    moved = table(1500, 3, age=52.0, pro=0.6, accuracy=0.6)
    moved.drop(columns="truth").to_json(paths["moved.jsonl"], orient="records", lines=True)
    paths["c.yaml"].write_text(CONFIG)
    for name, frame in (("same", table(1500, 2)), ("moved", moved)):
        labels = (
            frame[["id", "truth"]].rename(columns={"truth": "label"}).sample(frac=1, random_state=0)
        )
        path = tmp_path / f"{name}-labels.csv"
        labels.to_csv(path, index=False)
        paths[f"{name}-labels"] = path
    return paths


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["check", *map(str, args)])


def test_unchanged_data_passes_with_exit_0(files: dict[str, Path]) -> None:
    result = run(
        "--reference",
        files["ref.csv"],
        "--current",
        files["same.parquet"],
        "--labels",
        files["same-labels"],
        "--config",
        files["c.yaml"],
    )
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output
    assert "feature_drift" in result.output


def test_drift_and_worse_accuracy_fail_with_exit_1_and_json_lists_every_result(
    files: dict[str, Path],
) -> None:
    result = run(
        "--reference",
        files["ref.csv"],
        "--current",
        files["moved.jsonl"],
        "--labels",
        files["moved-labels"],
        "--config",
        files["c.yaml"],
        "--format",
        "json",
    )
    assert result.exit_code == 1
    document = json.loads(result.output)
    rows = {(r["detector"], r["feature"], r["segment"]): r for r in document["results"]}
    ks = rows[("ks", "age", "")]
    assert set(ks) >= {
        "feature",
        "detector",
        "score",
        "statistic",
        "threshold",
        "direction",
        "drifted",
        "reference_size",
        "current_size",
    }
    assert (ks["direction"], ks["drifted"], ks["reference_size"], ks["current_size"]) == (
        "lower",
        True,
        3000,
        1500,
    )
    assert ks["statistic"] > 0.3
    assert rows[("feature_drift", "plan", "")]["drifted"] is True
    assert rows[("dataset_drift", "", "")]["score"] == 1.0
    accuracy = rows[("accuracy", "", "")]
    assert accuracy["score"] == pytest.approx(0.6, abs=0.04)
    assert (accuracy["threshold"], accuracy["direction"], accuracy["drifted"]) == (
        0.8,
        "lower",
        True,
    )
    assert rows[("label_coverage", "", "")]["score"] == 1.0
    assert document["summary"]["failed"] == sum(r["drifted"] for r in document["results"])
    assert document["summary"]["total"] == len(document["results"])


def test_junit_output_for_ci(files: dict[str, Path]) -> None:
    result = run(
        "--reference",
        files["ref.csv"],
        "--current",
        files["moved.jsonl"],
        "--config",
        files["c.yaml"],
        "--format",
        "junit",
    )
    assert result.exit_code == 1
    suite = ET.fromstring(result.output)
    cases = suite.findall("testcase")
    failures = [case for case in cases if case.find("failure") is not None]
    assert suite.get("tests") == str(len(cases))
    assert suite.get("failures") == str(len(failures))
    assert {case.get("classname") for case in failures} >= {"modeltap.check.churn.feature_drift"}


def test_labels_in_the_same_order_need_no_id(files: dict[str, Path], tmp_path: Path) -> None:
    labels = tmp_path / "ordered.csv"
    pd.DataFrame({"label": table(1500, 2)["truth"]}).to_csv(labels, index=False)
    config = tmp_path / "noid.yaml"
    config.write_text(CONFIG.replace("payload: {instance_id_field: id}", "positive_class: 1"))
    result = run(
        "--reference",
        files["ref.csv"],
        "--current",
        files["same.parquet"],
        "--labels",
        labels,
        "--config",
        config,
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    rows = {r["detector"]: r for r in json.loads(result.output)["results"] if not r["segment"]}
    assert rows["accuracy"]["score"] == pytest.approx(0.9, abs=0.03)


def test_without_a_configuration_features_come_from_the_reference(files: dict[str, Path]) -> None:
    result = run(
        "--reference", files["ref.csv"], "--current", files["moved.jsonl"], "--format", "json"
    )
    assert result.exit_code == 1
    results = json.loads(result.output)["results"]
    flagged = {r["feature"]: r for r in results if r["detector"] == "feature_drift"}
    # id is text (a categorical column full of new values), age numerical, plan categorical.
    assert set(flagged) == {"id", "age", "plan"}
    assert flagged["age"]["details"]["test"] == "psi"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reference", "nope.csv", "--current", "nope.csv"], "does not exist"),
        (["--reference", "data.xlsx", "--current", "data.xlsx"], "cannot tell the format"),
        (["--current", "x.csv"], "Missing option '--reference'"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(
    args: list[str], message: str, tmp_path: Path
) -> None:
    (tmp_path / "data.xlsx").write_text("x")
    result = CliRunner().invoke(
        cli, ["check", *[str(tmp_path / a) if "." in a else a for a in args]]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_labels_that_cannot_be_matched_are_a_usage_error(
    files: dict[str, Path], tmp_path: Path
) -> None:
    short = tmp_path / "short.csv"
    pd.DataFrame({"label": [1, 0]}).to_csv(short, index=False)
    result = run(
        "--reference", files["ref.csv"], "--current", files["same.parquet"], "--labels", short
    )
    assert result.exit_code == 2
    assert "give an --id-column" in result.output
