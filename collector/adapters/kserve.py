"""KServe v1: ``{"instances": [...]}`` (or ``inputs``) in, ``{"predictions": [...]}`` out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collector.adapters.base import PayloadError, Rows, align, as_row, as_score
from collector.adapters.paths import get_path
from monitor.config import PayloadConfig


def extract(
    request: Any, response: Any, payload: PayloadConfig, feature_names: Sequence[str]
) -> Rows:
    if not isinstance(request, dict):
        raise PayloadError("KServe v1 request must be a JSON object")
    instances = request.get("instances", request.get("inputs"))
    if not isinstance(instances, list):
        raise PayloadError("KServe v1 request needs an 'instances' (or 'inputs') list")
    if not isinstance(response, dict):
        raise PayloadError("KServe v1 response must be a JSON object")
    outputs = response.get("predictions", response.get("outputs"))
    if outputs is None:
        raise PayloadError("KServe v1 response has no 'predictions'")
    predictions = align(len(instances), outputs)
    scores: list[float | None] = [None] * len(predictions)
    if payload.prediction_path or payload.score_path:
        picked, scores = [], []
        for item in predictions:
            picked.append(_pick(item, payload.prediction_path))
            scores.append(as_score(_pick(item, payload.score_path)) if payload.score_path else None)
        predictions = picked
    return Rows([as_row(item, feature_names) for item in instances], predictions, scores)


def _pick(item: Any, path: str | None) -> Any:
    try:
        return get_path(item, path)
    except KeyError as error:
        raise PayloadError(f"prediction item: {error.args[0]}") from None
