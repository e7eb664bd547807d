"""Dotted paths into parsed JSON: ``data.features`` or ``outputs.0.data``."""

from __future__ import annotations

from typing import Any

_MISSING = object()


def get_path(document: Any, path: str | None) -> Any:
    """The value at ``path`` (None or "" means the document itself); KeyError if absent.

    >>> get_path({"a": [{"b": 1}]}, "a.0.b")
    1
    """
    if not path:
        return document
    node = document
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        elif (
            isinstance(node, list)
            and part.lstrip("-").isdigit()
            and -len(node) <= int(part) < len(node)
        ):
            node = node[int(part)]
        else:
            node = _MISSING
        if node is _MISSING:
            raise KeyError(f"no value at {path!r}")
    return node
