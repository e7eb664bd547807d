"""Generic JSON: a feature object, a list of records, or fields at configured dotted paths."""

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

# Response keys that conventionally hold the answer when no prediction_path is configured.
_ANSWER_KEYS = ("predictions", "prediction", "outputs", "output", "result", "results")


def extract(
    request: Any, response: Any, payload: PayloadConfig, feature_names: Sequence[str]
) -> Rows:
    instances = _at(request, payload.features_path, "features_path")
    if isinstance(instances, list):
        if instances and not isinstance(instances[0], dict | list):
            instances = [instances]  # one row given as a bare list of values
    elif isinstance(instances, dict):
        instances = [instances]
    else:
        raise PayloadError("request holds neither an object nor a list of records")
    rows = [as_row(item, feature_names) for item in instances]
    answer = _answer(response, payload.prediction_path)
    predictions = align(len(rows), answer)
    scores: list[float | None] = [None] * len(rows)
    class_scores: list[Any] = [None] * len(rows)
    if payload.score_path:
        answered = _at(response, payload.score_path, "score_path")
        if len(rows) == 1 and as_class_scores(answered) is not None and len(answered) > 1:
            answered = [answered]  # one row's class probabilities, not one score per row
        raw = align(len(rows), answered, "score")
        scores = [as_score(value) for value in raw]
        class_scores = [as_class_scores(value) for value in raw]
    return Rows(rows, predictions, scores, class_scores=class_scores)


def _answer(response: Any, path: str | None) -> Any:
    if path:
        return _at(response, path, "prediction_path")
    if isinstance(response, dict):
        for key in _ANSWER_KEYS:
            if key in response:
                return response[key]
    return response


def _at(document: Any, path: str | None, setting: str) -> Any:
    try:
        return get_path(document, path)
    except KeyError:
        raise PayloadError(f"nothing at {setting} {path!r}") from None
