"""KServe v1: ``{"instances": [...]}`` (or ``inputs``) in, ``{"predictions": [...]}`` out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collector.adapters.base import (
    PayloadError,
    Rows,
    align,
    as_class_scores,
    as_row,
    as_score,
)
from collector.adapters.paths import get_path
from modeltap.config import PayloadConfig


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
    items = align(len(instances), outputs)
    # prediction_path and score_path look inside prediction objects; a bare value is the
    # answer itself (which also lets one model config name Open Inference outputs).
    predictions = [
        _pick(item, payload.prediction_path) if isinstance(item, dict) else item for item in items
    ]
    answered = [
        _pick(item, payload.score_path) if isinstance(item, dict) and payload.score_path else None
        for item in items
    ]
    return Rows(
        [as_row(item, feature_names) for item in instances],
        predictions,
        [as_score(value) for value in answered],
        class_scores=[as_class_scores(value) for value in answered],
    )


def _pick(item: dict[str, Any], path: str | None) -> Any:
    try:
        return get_path(item, path)
    except KeyError as error:
        raise PayloadError(f"prediction item: {error.args[0]}") from None
