"""NannyML 0.13's own answers, computed in the anchor environment (scripts/anchors.sh).

Run by tests/detectors/anchors.py as ``ANCHOR_PYTHON nannyml_runner.py TASK IN.npz OUT.json``:
it reads the arrays, fits NannyML on the reference rows, runs it over the analysis rows with
the same chunk size, and writes one JSON record per chunk (NaN as null). NannyML is imported
inside the functions: this file is also collected by modeltap's own interpreter, for doctests,
where NannyML is not installed.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
from typing import Any

import numpy as np
import pandas as pd

BINARY_METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]
CONFUSION = ["true_positive", "false_positive", "false_negative", "true_negative"]


def _nannyml() -> Any:
    # NannyML sends usage statistics unless told not to; there is no network here anyway.
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"
    return importlib.import_module("nannyml")


def _records(frame: pd.DataFrame, names: list[str], fields: list[str]) -> list[dict[str, Any]]:
    rows = []
    for _, row in frame.iterrows():
        record = {"period": row[("chunk", "period")]}
        for name in names:
            for field in fields:
                value = row[(name, field)]
                record[f"{name}.{field}"] = None if value is None or _nan(value) else _plain(value)
        rows.append(record)
    return rows


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def cbpe(data: Any) -> dict[str, Any]:
    nml = _nannyml()
    reference = pd.DataFrame(
        {"score": data["ref_score"], "label": data["ref_label"], "pred": data["ref_pred"]}
    )
    analysis = pd.DataFrame({"score": data["cur_score"], "pred": data["cur_pred"]})
    estimator = nml.CBPE(
        y_pred_proba="score",
        y_pred="pred",
        y_true="label",
        problem_type="classification_binary",
        metrics=[*BINARY_METRICS, "confusion_matrix"],
        chunk_size=int(data["chunk_size"]),
    )
    estimator.fit(reference)
    frame = estimator.estimate(analysis).to_df()
    fields = ["value", "sampling_error", "lower_threshold", "upper_threshold", "alert"]
    knots = None
    if estimator.needs_calibration:
        regressor = estimator.calibrator._regressor
        knots = [regressor.X_thresholds_.tolist(), regressor.y_thresholds_.tolist()]
    return {
        "needs_calibration": bool(estimator.needs_calibration),
        "calibration": knots,
        "chunks": _records(frame, BINARY_METRICS + CONFUSION, fields),
    }


def cbpe_multiclass(data: Any) -> dict[str, Any]:
    nml = _nannyml()
    # Class names sort in column order (NannyML sorts them), so column i is class f"c{i}".
    classes = [f"c{i}" for i in range(data["ref_scores"].shape[1])]
    if sorted(classes) != classes:
        raise ValueError("at most ten classes: their names must sort in column order")

    def frame(prefix: str, labels: bool) -> pd.DataFrame:
        table = pd.DataFrame(data[f"{prefix}_scores"], columns=[f"p_{c}" for c in classes])
        table["pred"] = np.asarray(classes)[data[f"{prefix}_pred"]]
        if labels:
            table["label"] = np.asarray(classes)[data[f"{prefix}_label"]]
        return table

    estimator = nml.CBPE(
        y_pred_proba={c: f"p_{c}" for c in classes},
        y_pred="pred",
        y_true="label",
        problem_type="classification_multiclass",
        metrics=BINARY_METRICS,
        chunk_size=int(data["chunk_size"]),
    )
    estimator.fit(frame("ref", labels=True))
    result = estimator.estimate(frame("cur", labels=False)).to_df()
    fields = ["value", "sampling_error", "lower_threshold", "upper_threshold", "alert"]
    calibrations = []
    for name in classes:
        regressor = getattr(estimator._calibrators[name], "_regressor", None)
        calibrations.append(
            None
            if regressor is None
            else [regressor.X_thresholds_.tolist(), regressor.y_thresholds_.tolist()]
        )
    return {"calibrations": calibrations, "chunks": _records(result, BINARY_METRICS, fields)}


def dle(data: Any) -> dict[str, Any]:
    nml = _nannyml()
    features = [f"x{i}" for i in range(data["ref_x"].shape[1])]

    def frame(prefix: str, labels: bool) -> pd.DataFrame:
        table = pd.DataFrame(data[f"{prefix}_x"], columns=features)
        table["pred"] = data[f"{prefix}_pred"]
        if labels:
            table["label"] = data[f"{prefix}_label"]
        return table

    estimator = nml.DLE(
        feature_column_names=features,
        y_pred="pred",
        y_true="label",
        metrics=["mae", "rmse"],
        chunk_size=int(data["chunk_size"]),
    )
    estimator.fit(frame("ref", labels=True))
    result = estimator.estimate(frame("cur", labels=False)).to_df()
    fields = ["value", "sampling_error", "lower_threshold", "upper_threshold", "alert"]
    return {"chunks": _records(result, ["mae", "rmse"], fields)}


def pca(data: Any) -> dict[str, Any]:
    nml = _nannyml()
    features = [f"x{i}" for i in range(data["ref_x"].shape[1])]
    calculator = nml.DataReconstructionDriftCalculator(
        column_names=features, chunk_size=int(data["chunk_size"]), n_components=0.65
    )
    calculator.fit(pd.DataFrame(data["ref_x"], columns=features))
    result = calculator.calculate(pd.DataFrame(data["cur_x"], columns=features)).to_df()
    fields = ["value", "sampling_error", "lower_threshold", "upper_threshold", "alert"]
    return {
        "components": int(calculator._pca.n_components_),
        "chunks": _records(result, ["reconstruction_error"], fields),
    }


TASKS = {"cbpe": cbpe, "cbpe_multiclass": cbpe_multiclass, "dle": dle, "pca": pca}


def main(argv: list[str]) -> int:
    task, source, target = argv[1:4]
    with np.load(source) as data:
        answer = TASKS[task](data)
    with open(target, "w", encoding="utf-8") as out:
        json.dump(answer, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
