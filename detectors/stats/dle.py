"""Direct loss estimation (NannyML's DLE): a regressor's MAE and RMSE before the labels arrive.

On the labelled reference two loss models learn, from the features and the prediction, each
row's absolute error and its squared error; a window's MAE is then the mean predicted
absolute error and its RMSE the root of the mean predicted squared error, negative
predictions counted as 0 (nannyml/performance_estimation/direct_loss_estimation/metrics.py).

NannyML's loss model is LightGBM's ``LGBMRegressor()`` with its defaults; here it is
scikit-learn's histogram gradient boosting set to the same ones (100 rounds, learning rate
0.1, 31 leaves, at least 20 rows a leaf, 255 bins, no early stopping), which avoids a second
boosting library. The two differ in binning and split details, so the estimates agree
closely, not to the last digit. scikit-learn is an optional extra.

The sampling errors are NannyML's: the reference's standard deviation of the absolute error
over sqrt(n) for MAE, and for RMSE the delta method on the mean squared error,
sqrt(s² / (4 n m)) with m and s the mean and deviation of the squared errors
(nannyml/sampling_error/regression.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.stats.bands import Band, Estimate, chunk_bounds, default_chunk_size, reference_band
from detectors.stats.samples import FloatArray
from modeltap.extras import require

METRICS = ("mae", "rmse")
# LightGBM's LGBMRegressor defaults, the model NannyML fits, in scikit-learn's names.
LOSS_MODEL: Mapping[str, Any] = {
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "max_bins": 255,
    "l2_regularization": 0.0,
    "early_stopping": False,
}


def _regressor(categorical: Sequence[int], columns: int, seed: int) -> Any:
    ensemble = require("sklearn.ensemble", feature="direct loss estimation", extra="estimation")
    mask = np.zeros(columns, dtype=bool)
    mask[list(categorical)] = True
    return ensemble.HistGradientBoostingRegressor(
        **LOSS_MODEL,
        categorical_features=mask if mask.any() else None,
        random_state=seed,
    )


@dataclass(frozen=True, slots=True)
class DleProfile:
    """The fitted loss models and what the sampling errors and bands need; it pickles.

    ``columns`` is the feature count the models expect (the prediction is added after them).
    """

    absolute: Any
    squared: Any
    absolute_std: float
    squared_std: float
    squared_mean: float
    bands: Mapping[str, Band]
    columns: int
    reference_size: int
    chunk_size: int

    def sampling_error(self, metric: str, size: int) -> float:
        if not size:
            return math.nan
        if metric == "mae":
            return self.absolute_std / math.sqrt(size)
        if not self.squared_mean:
            return math.nan
        return math.sqrt(self.squared_std**2 / (4 * size * self.squared_mean))


def fit(
    features: FloatArray,
    predictions: FloatArray,
    labels: FloatArray,
    *,
    categorical: Sequence[int] = (),
    chunk_size: int | None = None,
    seed: int = 0,
) -> DleProfile:
    """Fit both loss models on the labelled reference (rows with a missing label or
    prediction are left out, as NannyML does).

    ``features`` is 2-D, one row per prediction, NaN for a missing value; ``categorical``
    lists the columns holding category codes (non-negative integers below 255).
    """
    matrix = _inputs(features, predictions)
    usable = np.isfinite(labels) & np.isfinite(predictions)
    matrix, predictions, labels = matrix[usable], predictions[usable], labels[usable]
    if labels.size == 0:
        raise ValueError("direct loss estimation needs reference rows with labels and predictions")
    errors = labels - predictions
    absolute, squared = np.abs(errors), errors**2
    columns = matrix.shape[1]
    absolute_model = _regressor(categorical, columns, seed).fit(matrix, absolute)
    squared_model = _regressor(categorical, columns, seed).fit(matrix, squared)
    size = chunk_size or default_chunk_size(labels.size)
    per_chunk = [
        realized(labels[a:b], predictions[a:b]) for a, b in chunk_bounds(labels.size, size)
    ]
    return DleProfile(
        absolute=absolute_model,
        squared=squared_model,
        absolute_std=float(np.std(absolute)),
        squared_std=float(np.std(squared)),
        squared_mean=float(np.mean(squared)),
        # An error cannot fall below 0: NannyML replaces a lower bound under it with 0.
        bands={
            name: reference_band([chunk[name] for chunk in per_chunk], lower_limit=0.0)
            for name in METRICS
        },
        columns=columns - 1,
        reference_size=int(labels.size),
        chunk_size=size,
    )


def estimate(
    profile: DleProfile, features: FloatArray, predictions: FloatArray
) -> dict[str, Estimate]:
    """MAE and RMSE estimated for one window (rows without a prediction are left out)."""
    matrix = _inputs(features, predictions)
    if matrix.shape[1] != profile.columns + 1:
        raise ValueError(
            f"the loss models were fitted on {profile.columns} features, not {matrix.shape[1] - 1}"
        )
    matrix = matrix[np.isfinite(predictions)]
    size = int(matrix.shape[0])
    values: dict[str, float | None] = {"mae": None, "rmse": None}
    if size:
        values["mae"] = float(np.mean(np.maximum(0.0, profile.absolute.predict(matrix))))
        values["rmse"] = math.sqrt(float(np.mean(np.maximum(0.0, profile.squared.predict(matrix)))))
    return {
        name: Estimate.judge(
            name,
            values[name],
            profile.sampling_error(name, size),
            profile.bands[name],
            direction="higher",
            size=size,
            limits=(0.0, None),
        )
        for name in METRICS
    }


def realized(labels: FloatArray, predictions: FloatArray) -> dict[str, float]:
    """MAE and RMSE once labels are known, over rows that have both.

    >>> realized(np.array([1.0, 2.0, np.nan]), np.array([2.0, 2.0, 5.0]))
    {'mae': 0.5, 'rmse': 0.7071067811865476}
    """
    usable = np.isfinite(labels) & np.isfinite(predictions)
    if not usable.any():
        return {"mae": math.nan, "rmse": math.nan}
    errors = labels[usable] - predictions[usable]
    return {"mae": float(np.mean(np.abs(errors))), "rmse": math.sqrt(float(np.mean(errors**2)))}


def _inputs(features: FloatArray, predictions: FloatArray) -> FloatArray:
    matrix = np.asarray(features, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, np.newaxis]
    if matrix.shape[0] != predictions.size:
        raise ValueError("features and predictions must have one row per prediction")
    # The prediction is one more input of the loss model, as in NannyML.
    return np.column_stack([matrix, predictions])
