"""Shared shapes and helpers for the payload adapters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class PayloadError(Exception):
    """A body that does not have the expected shape; ``str()`` is the recorded reason."""


@dataclass(slots=True)
class Rows:
    """Column-aligned rows: ``features[i]`` goes with ``predictions[i]``."""

    features: list[dict[str, Any]]
    predictions: list[Any]
    scores: list[float | None] = field(default_factory=list)
    instance_ids: list[str | None] = field(default_factory=list)


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
