"""One side of bench/estimators_speed.py, in a process of its own so its peak memory is its own.

    PYTHON bench/estimators_child.py SIDE TASK IN.npz OUT.json

SIDE is ``modeltap`` (run by .venv's interpreter) or ``nannyml`` (by the anchor environment's,
scripts/anchors.sh --print); TASK is ``cbpe``, ``dle`` or ``pca``. The child reads the arrays
its task needs, imports its library and puts the inputs in the form that library takes
(numpy arrays for modeltap, pandas frames for NannyML), then resets the kernel's peak-RSS
mark, times the fit on the reference and the estimate over every analysis window, reads
``VmHWM`` and writes the figures and every window's values as JSON. File reads, imports and
the JSON are outside the clock. Libraries are imported inside the functions: modeltap is not
installed in the anchor environment, NannyML not in .venv.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Arrays = dict[str, Any]
# Per metric, one value and one sampling error per analysis window (None where undefined).
Values = dict[str, dict[str, list[float | None]]]

METRICS = {
    "cbpe": ("accuracy", "precision", "recall", "f1", "roc_auc"),
    "dle": ("mae", "rmse"),
    "pca": ("reconstruction_error",),
}
INPUTS = {
    "cbpe": ("ref_score", "ref_label", "ref_pred", "cur_score", "cur_pred", "chunk_size"),
    "dle": ("ref_x", "ref_target", "ref_guess", "cur_x", "cur_guess", "chunk_size"),
    "pca": ("ref_x", "cur_x", "chunk_size"),
}


@dataclass(frozen=True)
class Work:
    """A task made ready: the fit, the estimate over the windows, and reading its values."""

    fit: Callable[[], Any]
    estimate: Callable[[Any], Any]
    values: Callable[[Any], Values]
    details: Callable[[Any], dict[str, Any]]


def _modeltap(task: str, data: Arrays) -> Work:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from detectors.stats import cbpe, dle, multivariate
    from detectors.stats.bands import chunk_bounds
    from detectors.stats.boosting import portable

    chunk = int(data["chunk_size"])

    def windows(size: int) -> list[tuple[int, int]]:
        return chunk_bounds(size, chunk)

    def values(per_window: list[dict[str, Any]]) -> Values:
        return {
            name: {
                "value": [window[name].value for window in per_window],
                "sampling_error": [window[name].sampling_error for window in per_window],
            }
            for name in METRICS[task]
        }

    if task == "cbpe":
        ref_scores, scores = data["ref_score"], data["cur_score"]
        ref_labels, ref_predicted = data["ref_label"].astype(bool), data["ref_pred"].astype(bool)
        predicted = data["cur_pred"].astype(bool)
        return Work(
            fit=lambda: cbpe.fit(ref_scores, ref_labels, ref_predicted, chunk_size=chunk),
            estimate=lambda profile: [
                cbpe.estimate(profile, scores[a:b], predicted[a:b]) for a, b in windows(scores.size)
            ],
            values=values,
            details=lambda profile: {"calibrated": profile.calibration is not None},
        )
    ref_features, features = data["ref_x"], data["cur_x"]
    if task == "dle":
        importlib.import_module("sklearn.ensemble")  # the loss model's, before the clock
        ref_guesses, ref_targets, guesses = data["ref_guess"], data["ref_target"], data["cur_guess"]
        return Work(
            # As the reference profile keeps it: the trees as arrays, which the live path runs.
            fit=lambda: portable(dle.fit(ref_features, ref_guesses, ref_targets, chunk_size=chunk)),
            estimate=lambda profile: [
                dle.estimate(profile, features[a:b], guesses[a:b]) for a, b in windows(guesses.size)
            ],
            values=values,
            details=lambda _: {},
        )
    return Work(
        fit=lambda: multivariate.fit_reconstruction(ref_features, chunk_size=chunk),
        estimate=lambda profile: [
            {"reconstruction_error": multivariate.reconstruction_error(profile, features[a:b])}
            for a, b in windows(features.shape[0])
        ],
        values=values,
        details=lambda profile: {"components": len(profile.components)},
    )


def _nannyml(task: str, data: Arrays) -> Work:
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # no usage statistics from a benchmark
    nml = importlib.import_module("nannyml")
    chunk = int(data["chunk_size"])
    metrics = list(METRICS[task])

    def values(result: Any) -> Values:
        frame = result.filter(period="analysis").to_df()
        return {
            name: {
                field: [_plain(value) for value in frame[(name, field)]]
                for field in ("value", "sampling_error")
            }
            for name in metrics
        }

    if task == "cbpe":
        reference = pd.DataFrame(
            {"score": data["ref_score"], "label": data["ref_label"], "pred": data["ref_pred"]}
        )
        analysis = pd.DataFrame({"score": data["cur_score"], "pred": data["cur_pred"]})
        estimator = nml.CBPE(
            y_pred_proba="score",
            y_pred="pred",
            y_true="label",
            problem_type="classification_binary",
            metrics=metrics,
            chunk_size=chunk,
        )
        return Work(
            fit=lambda: estimator.fit(reference),
            estimate=lambda fitted: fitted.estimate(analysis),
            values=values,
            details=lambda _: {"calibrated": bool(estimator.needs_calibration)},
        )
    columns = [f"x{i:02d}" for i in range(data["ref_x"].shape[1])]
    if task == "dle":
        reference = pd.DataFrame(data["ref_x"], columns=columns)
        reference["pred"], reference["label"] = data["ref_guess"], data["ref_target"]
        analysis = pd.DataFrame(data["cur_x"], columns=columns)
        analysis["pred"] = data["cur_guess"]
        estimator = nml.DLE(
            feature_column_names=columns,
            y_pred="pred",
            y_true="label",
            metrics=metrics,
            chunk_size=chunk,
        )
        return Work(
            fit=lambda: estimator.fit(reference),
            estimate=lambda fitted: fitted.estimate(analysis),
            values=values,
            details=lambda _: {},
        )
    reference = pd.DataFrame(data["ref_x"], columns=columns)
    analysis = pd.DataFrame(data["cur_x"], columns=columns)
    calculator = nml.DataReconstructionDriftCalculator(
        column_names=columns, chunk_size=chunk, n_components=0.65
    )
    return Work(
        fit=lambda: calculator.fit(reference),
        estimate=lambda fitted: fitted.calculate(analysis),
        values=values,
        details=lambda _: {"components": int(calculator._pca.n_components_)},
    )


SIDES: dict[str, Callable[[str, Arrays], Work]] = {"modeltap": _modeltap, "nannyml": _nannyml}
# The packages whose versions decide each side's figures.
PACKAGES = {
    "modeltap": ("numpy", "scikit-learn"),
    "nannyml": ("nannyml", "numpy", "pandas", "scikit-learn", "lightgbm"),
}


def _plain(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def status_mb(field: str) -> float:
    """A size from /proc/self/status, in MB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def run(side: str, task: str, source: str) -> dict[str, Any]:
    """Ready the task, then time its fit and estimate and measure the peak they reach."""
    with np.load(source) as stored:
        data = {name: stored[name] for name in INPUTS[task]}
    work = SIDES[side](task, data)
    del data  # what the library's own inputs share with the arrays stays alive in them
    base = status_mb("VmRSS")
    # Writing 5 to clear_refs resets VmHWM to the current RSS: the peak is then the work's,
    # counted from the interpreter, the imports and the inputs already resident.
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")
    started = time.perf_counter()
    fitted = work.fit()
    fitted_at = time.perf_counter()
    result = work.estimate(fitted)
    done = time.perf_counter()
    peak = status_mb("VmHWM")
    return {
        "fit_s": fitted_at - started,
        "estimate_s": done - fitted_at,
        "base_mb": base,
        "peak_mb": peak,
        "values": work.values(result),
        "details": work.details(fitted),
        "versions": {name: importlib.metadata.version(name) for name in PACKAGES[side]},
        "python": sys.version.split()[0],
    }


def main(argv: list[str]) -> int:
    side, task, source, target = argv[1:5]
    report = run(side, task, source)
    with open(target, "w", encoding="utf-8") as out:
        json.dump(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
