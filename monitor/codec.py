"""JSON encoding shared by the store, the spool and the wire."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

# orjson writes NaN and infinities as null (what we want), and is ~10x faster than the
# json module, which matters: every captured row's features pass through here.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> str:
    """Compact JSON that PostgreSQL and SQLite accept: NaN and infinities become null.

    Python's json module writes NaN as a bare ``NaN`` token, which is not JSON; a captured
    payload containing one must not make a whole batch unstorable.

    >>> dumps({"x": float("nan"), "y": [1.5]})
    '{"x":null,"y":[1.5]}'
    """
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:
        # Types orjson refuses (say, integers beyond 64 bits): the slow, general path.
        return json.dumps(_finite(value), separators=(",", ":"), default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
