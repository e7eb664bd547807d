"""Shared shapes and helpers for the payload adapters."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modeltap.config import MAX_CLASSES
from modeltap.schema import ClassScores


class PayloadError(Exception):
    """A body that does not have the expected shape; ``str()`` is the recorded reason."""


@dataclass(slots=True)
class Rows:
    """Column-aligned rows: ``features[i]`` goes with ``predictions[i]``."""

    features: list[dict[str, Any]]
    predictions: list[Any]
    scores: list[float | None] = field(default_factory=list)
    instance_ids: list[str | None] = field(default_factory=list)
    # Per row, a multiclass model's probabilities (see ``as_class_scores``), or None.
    class_scores: list[ClassScores | None] = field(default_factory=list)


def positional(
    values: Sequence[Any], feature_names: Sequence[str], prefix: str = "f"
) -> dict[str, Any]:
    """Name an unnamed row: by the configured features when the count matches, else f0, f1…"""
    if len(values) == len(feature_names):
        return dict(zip(feature_names, values, strict=True))
    return {f"{prefix}{index}": value for index, value in enumerate(values)}


def as_row(instance: Any, feature_names: Sequence[str]) -> dict[str, Any]:
    """One instance (object, list or scalar) as a feature mapping."""
    if isinstance(instance, dict):
        return dict(instance)
    if isinstance(instance, list):
        return positional(instance, feature_names)
    name = feature_names[0] if len(feature_names) == 1 else "input"
    return {name: instance}


def align(count: int, predictions: Any, what: str = "prediction") -> list[Any]:
    """``count`` predictions from a list (one each) or a lone value (one row)."""
    if isinstance(predictions, list):
        if len(predictions) != count:
            raise PayloadError(f"{count} instance(s) but {len(predictions)} {what}(s)")
        return predictions
    if count != 1:
        raise PayloadError(f"{count} instances but a single {what}")
    return [predictions]


def as_score(value: Any) -> float | None:
    """A numeric score, or None when the value is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def as_class_scores(value: Any) -> ClassScores | None:
    """A row's class probabilities: a list of numbers (in the model's class order) or an
    object of them keyed by class, every one finite; anything else (or more than
    MAX_CLASSES) is None, as a score that is not a number is.

    >>> as_class_scores([0.2, 0.8]), as_class_scores({"cat": 1, "dog": 0})
    ([0.2, 0.8], {'cat': 1.0, 'dog': 0.0})
    >>> as_class_scores([0.5, "x"]), as_class_scores(0.5), as_class_scores([])
    (None, None, None)
    """
    if isinstance(value, list):
        numbers = [as_score(item) for item in value]
        if 0 < len(numbers) <= MAX_CLASSES and all(_finite(item) for item in numbers):
            return [float(item) for item in numbers if item is not None]
        return None
    if isinstance(value, dict):
        named = {str(key): as_score(item) for key, item in value.items()}
        if 0 < len(named) <= MAX_CLASSES and all(_finite(item) for item in named.values()):
            return {key: float(item) for key, item in named.items() if item is not None}
    return None


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
