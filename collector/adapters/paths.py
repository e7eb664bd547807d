"""Dotted paths into parsed JSON: ``data.features``, ``outputs.0.data``, ``predictions.*.label``.

A step that meets a list and is not an index is taken inside each element, so
``predictions.label`` (or explicitly ``predictions.*.label``) reads the ``label`` of every record
in ``{"predictions": [{"label": …, "probability": …}, …]}``: the shape most custom servers answer
with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_MISSING = object()


def get_path(document: Any, path: str | None) -> Any:
    """The value at ``path`` (None or "" means the document itself); KeyError if absent.

    >>> get_path({"a": [{"b": 1}]}, "a.0.b")
    1
    >>> get_path({"p": [{"label": "x"}, {"label": "y"}]}, "p.label")
    ['x', 'y']
    >>> get_path({"p": [{"s": [0.2, 0.8]}, {"s": [0.6, 0.4]}]}, "p.*.s.1")
    [0.8, 0.4]
    """
    if not path:
        return document
    found = _walk(document, path.split("."))
    if found is _MISSING:
        raise KeyError(f"no value at {path!r}")
    return found


def _walk(node: Any, parts: Sequence[str]) -> Any:
    for step, part in enumerate(parts):
        if isinstance(node, list) and not _is_index(part, node):
            # Into each record: "*" says so explicitly, a field name implies it.
            rest = parts[step + 1 :] if part == "*" else parts[step:]
            values = [_walk(item, rest) for item in node]
            return _MISSING if any(value is _MISSING for value in values) else values
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        elif isinstance(node, list):
            node = node[int(part)]
        else:
            node = _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def _is_index(part: str, node: list[Any]) -> bool:
    return part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node)
