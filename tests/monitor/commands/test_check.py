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
    # The gate counts verdicts: the raw tests behind feature_drift are listed, not counted.
    evidence = {r["detector"] for r in document["results"] if not r["deciding"]}
    assert evidence == {"ks", "psi", "chisquare"}
    verdicts = [r for r in document["results"] if r["deciding"]]
    assert document["summary"]["failed"] == sum(r["drifted"] for r in verdicts) == 4
    assert document["summary"]["total"] == len(verdicts)


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


def test_a_misspelled_id_column_is_refused_not_joined_by_row_order(
    files: dict[str, Path],
) -> None:
    result = run(
        "--reference",
        files["ref.csv"],
        "--current",
        files["same.parquet"],
        "--labels",
        files["same-labels"],
        "--config",
        files["c.yaml"],
        "--id-column",
        "customer",
    )
    assert result.exit_code == 2
    assert "--id-column 'customer' is not a column of the labels or the current file" in (
        result.output
    )


def numbers(size: int, seed: int, shift: float = 0.0, features: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({f"x{i}": rng.normal(shift, 1.0, size) for i in range(features)})


def test_the_gate_counts_each_features_verdict_not_the_raw_tests(tmp_path: Path) -> None:
    # 50,000 rows moved by 0.05 SD: the KS p-value is tiny, PSI (the configured method) is not.
    numbers(50_000, 1).to_csv(tmp_path / "ref.csv", index=False)
    numbers(50_000, 2, shift=0.05).to_csv(tmp_path / "cur.csv", index=False)
    result = run(
        "--reference", tmp_path / "ref.csv", "--current", tmp_path / "cur.csv", "--format", "json"
    )
    document = json.loads(result.output)
    by = {(r["detector"], r["feature"]): r for r in document["results"]}
    assert by[("ks", "x0")]["drifted"] is True
    assert (by[("psi", "x0")]["drifted"], by[("feature_drift", "x0")]["drifted"]) == (False, False)
    assert (result.exit_code, document["summary"]["failed"]) == (0, 0)


def test_three_drifted_features_fail_three_verdicts_and_the_dataset(tmp_path: Path) -> None:
    numbers(3000, 1, features=3).to_csv(tmp_path / "ref.csv", index=False)
    numbers(3000, 2, shift=1.0, features=3).to_csv(tmp_path / "cur.csv", index=False)
    result = run("--reference", tmp_path / "ref.csv", "--current", tmp_path / "cur.csv")
    assert result.exit_code == 1
    # x0, x1, x2, dataset_drift and the features together (reconstruction_error, on by
    # default); not 3 tests for each feature.
    assert "5 failed" in result.output
    assert "reconstruction_error" in result.output


def test_a_current_file_without_the_features_is_refused(
    files: dict[str, Path], tmp_path: Path
) -> None:
    partial = tmp_path / "partial.csv"
    table(1500, 2).drop(columns=["truth", "plan"]).to_csv(partial, index=False)
    result = run("--reference", files["ref.csv"], "--current", partial, "--config", files["c.yaml"])
    assert result.exit_code == 2
    assert "has no column for 1 of the 2 features of model 'churn' (plan)" in result.output


def test_too_little_data_fails_the_gate_and_names_the_setting(
    files: dict[str, Path], tmp_path: Path
) -> None:
    small = tmp_path / "small.csv"
    table(89, 2).drop(columns="truth").to_csv(small, index=False)
    args: list[str | Path] = [
        "--reference",
        files["ref.csv"],
        "--current",
        small,
        "--config",
        files["c.yaml"],
    ]
    result = run(*args)
    assert result.exit_code == 1
    assert "0 failed" in result.output
    assert "the current file has 89 rows, drift needs detectors.drift.min_current_size = 100" in (
        result.output
    )
    junit = ET.fromstring(run(*args, "--format", "junit").stdout)
    assert int(junit.get("failures") or 0) > 0
    assert junit.get("skipped") == "0"
    allowed = run(*args, "--allow-insufficient")
    assert allowed.exit_code == 0, allowed.output
    assert "with too little data" in allowed.output
    assert "the gate fails" not in allowed.output


def test_continuous_labels_need_the_regression_task(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    for name, seed in (("ref", 1), ("cur", 2)):
        frame = numbers(500, seed)
        frame["prediction"] = frame["x0"] * 2 + rng.normal(0, 0.1, 500)
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    labels = tmp_path / "truth.csv"
    pd.DataFrame({"label": rng.normal(0, 2, 500)}).to_csv(labels, index=False)
    files: list[str | Path] = [
        "--reference",
        tmp_path / "ref.csv",
        "--current",
        tmp_path / "cur.csv",
    ]
    refused = run(*files, "--labels", labels)
    assert refused.exit_code == 2
    assert "pass --task regression" in refused.output
    regression = run(*files, "--labels", labels, "--task", "regression", "--format", "json")
    detectors = {r["detector"] for r in json.loads(regression.output)["results"]}
    assert {"mae", "rmse"} <= detectors
    assert "accuracy" not in detectors


def test_failures_only_shows_what_failed(files: dict[str, Path]) -> None:
    args: list[str | Path] = [
        "--reference",
        files["ref.csv"],
        "--current",
        files["moved.jsonl"],
        "--config",
        files["c.yaml"],
    ]
    every = run(*args, "--all").output
    failures = run(*args, "--failures-only").output
    assert "ALERT" in failures
    assert "│ ok" not in failures
    assert "│ ks " in every
    assert "│ ok" in every
    assert run(*args, "--all", "--failures-only").exit_code == 2


def calibrated(size: int, seed: int, spread: float) -> pd.DataFrame:
    """A calibrated classifier: x0's score is its chance of a positive; near 0 it is unsure."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(0.0, spread, size)
    score = 1 / (1 + np.exp(-x0))
    return pd.DataFrame(
        {"x0": x0, "x1": rng.normal(size=size), "score": score, "prediction": (score >= 0.5) * 1}
    ).assign(label=(rng.random(size) < score) * 1)


def test_a_labelled_reference_estimates_the_current_files_accuracy(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "models:\n  - {name: m, task: classification, positive_class: 1, features: "
        "[{name: x0, type: numerical}, {name: x1, type: numerical}]}\n"
    )
    calibrated(5000, 1, 3.0).to_csv(tmp_path / "ref.csv", index=False)
    calibrated(2000, 2, 3.0).drop(columns="label").to_csv(tmp_path / "same.csv", index=False)
    calibrated(2000, 3, 0.5).drop(columns="label").to_csv(tmp_path / "unsure.csv", index=False)
    verdicts = {}
    for name in ("same", "unsure"):
        result = run("--reference", tmp_path / "ref.csv", "--current", tmp_path / f"{name}.csv",
                     "--config", config, "--format", "json")  # fmt: skip
        rows = {r["detector"]: r for r in json.loads(result.output)["results"]}
        verdicts[name] = rows["estimated_accuracy"]
    assert verdicts["same"]["drifted"] is False
    assert verdicts["unsure"]["drifted"] is True
    # E[max(p, 1 - p)]: about 0.78 for scores spread by 3, about 0.55 by 0.5.
    assert verdicts["unsure"]["score"] < 0.6
    assert verdicts["same"]["score"] > 0.7


def test_a_reference_without_labels_adds_no_estimation_check(files: dict[str, Path]) -> None:
    result = run("--reference", files["ref.csv"], "--current", files["moved.jsonl"],
                 "--config", files["c.yaml"], "--format", "json")  # fmt: skip
    detectors = {r["detector"] for r in json.loads(result.output)["results"]}
    assert not {d for d in detectors if d.startswith(("estimated_", "realized_"))}
