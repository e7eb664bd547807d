"""Open Inference Protocol v2: named tensors (shape, datatype, row-major data) both ways.

The first dimension of every tensor is the batch. A tensor with one value per row becomes a
column named after it; one with k values per row becomes k columns, named by the model's
configured features when it is the only input and k matches, else ``<tensor>_<j>``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from collector.adapters.base import PayloadError, Rows, as_class_scores, as_score
from modeltap.config import PayloadConfig


def extract(
    request: Any, response: Any, payload: PayloadConfig, feature_names: Sequence[str]
) -> Rows:
    inputs = _tensors(request, "inputs", "request")
    outputs = _tensors(response, "outputs", "response")
    columns: dict[str, list[Any]] = {}
    batch: int | None = None
    for tensor in inputs:
        name, rows = _rows(tensor)
        batch = _same_batch(batch, len(rows), name)
        width = len(rows[0]) if rows else 1
        if width == 1:
            columns[name] = [row[0] for row in rows]
        else:
            names = (
                list(feature_names)
                if len(inputs) == 1 and len(feature_names) == width
                else [f"{name}_{j}" for j in range(width)]
            )
            for j, column in enumerate(names):
                columns[column] = [row[j] for row in rows]
    count = batch or 0
    features = [{name: values[i] for name, values in columns.items()} for i in range(count)]
    prediction_rows = _rows(_choose(outputs, payload.prediction_path))[1]
    _same_batch(count, len(prediction_rows), "prediction output")
    predictions = [row[0] if len(row) == 1 else row for row in prediction_rows]
    scores: list[float | None]
    class_scores: list[Any] = [None] * count
    if payload.score_path:
        score_rows = _rows(_choose(outputs, payload.score_path))[1]
        _same_batch(count, len(score_rows), "score output")
        scores = [as_score(row[-1]) for row in score_rows]
        # k values per row are a classifier's class probabilities, kept whole for a
        # multiclass model (the last is the positive class's score of a binary one).
        class_scores = [as_class_scores(row) if len(row) > 1 else None for row in score_rows]
    else:
        # Two values per row are a binary classifier's class probabilities: the second is
        # the positive class's score.
        scores = [as_score(row[1]) if len(row) == 2 else None for row in prediction_rows]
    return Rows(features, predictions, scores, class_scores=class_scores)


def _tensors(body: Any, key: str, what: str) -> list[dict[str, Any]]:
    tensors = body.get(key) if isinstance(body, dict) else None
    if not isinstance(tensors, list) or not tensors:
        raise PayloadError(f"Open Inference v2 {what} needs a non-empty '{key}' list")
    for tensor in tensors:
        if not isinstance(tensor, dict) or "name" not in tensor or "data" not in tensor:
            raise PayloadError(f"every v2 {what} tensor needs 'name' and 'data'")
    return tensors


def _rows(tensor: dict[str, Any]) -> tuple[str, list[list[Any]]]:
    name = str(tensor["name"])
    data = _flatten(tensor["data"])
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise PayloadError(f"tensor {name!r} needs a shape of non-negative integers")
    if math.prod(shape) != len(data):
        raise PayloadError(f"tensor {name!r} has {len(data)} values for shape {shape}")
    batch = shape[0] if shape else 1
    width = math.prod(shape[1:]) if len(shape) > 1 else 1
    return name, [data[i * width : (i + 1) * width] for i in range(batch)]


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def _choose(outputs: list[dict[str, Any]], name: str | None) -> dict[str, Any]:
    if not name:
        return outputs[0]
    for tensor in outputs:
        if tensor["name"] == name:
            return tensor
    raise PayloadError(f"no output tensor named {name!r}")


def _same_batch(batch: int | None, rows: int, name: str) -> int:
    if batch is not None and batch != rows:
        raise PayloadError(f"{name!r} has {rows} rows but the batch has {batch}")
    return rows
