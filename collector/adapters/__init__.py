"""Payload adapters: request and response bodies in, one row per instance out.

Three dialects: KServe v1 (``instances``/``inputs`` → ``predictions``), the Open Inference
Protocol v2 (named tensors with shape, datatype and data), and generic JSON (a feature object,
a list of records, or fields picked by configured dotted paths). Every failure is a
``PayloadError`` carrying a short reason; callers record it, they never let it escape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from collector.adapters import generic, kserve, oip
from collector.adapters.base import PayloadError, Rows
from modeltap.config import PayloadConfig

__all__ = ["PayloadError", "Rows", "detect", "extract"]

_Extractor = Callable[[Any, Any, PayloadConfig, Sequence[str]], Rows]
_DIALECTS: dict[str, _Extractor] = {
    "kserve_v1": kserve.extract,
    "oip_v2": oip.extract,
    "json": generic.extract,
}


def detect(request: Any, hint: str | None) -> str:
    """Which dialect a request body speaks, trusting the path's hint when there is one."""
    if hint in _DIALECTS:
        return hint
    if isinstance(request, dict):
        inputs = request.get("inputs")
        if (
            isinstance(inputs, list)
            and inputs
            and all(
                isinstance(tensor, dict) and "data" in tensor and "name" in tensor
                for tensor in inputs
            )
        ):
            return "oip_v2"
        if "instances" in request or "inputs" in request:
            return "kserve_v1"
    return "json"


def extract(
    request: Any,
    response: Any,
    *,
    payload: PayloadConfig,
    feature_names: Sequence[str] = (),
    hint: str | None = None,
) -> Rows:
    """Rows from parsed request and response JSON; raises PayloadError with a reason.

    >>> extract({"instances": [[1, 2]]}, {"predictions": [0]}, payload=PayloadConfig(),
    ...         feature_names=["a", "b"]).features
    [{'a': 1, 'b': 2}]
    """
    dialect = detect(request, payload.format if payload.format != "auto" else hint)
    rows = _DIALECTS[dialect](request, response, payload, feature_names)
    _take_instance_ids(rows, payload.instance_id_field)
    return rows


def _take_instance_ids(rows: Rows, field_name: str | None) -> None:
    if not rows.instance_ids:
        rows.instance_ids = [None] * len(rows.features)
    if not field_name:
        return
    for index, features in enumerate(rows.features):
        if field_name in features:
            value = features.pop(field_name)
            rows.instance_ids[index] = None if value is None else str(value)
