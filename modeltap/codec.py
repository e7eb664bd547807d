"""JSON encoding shared by the store, the spool and the wire."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")

# orjson writes NaN and infinities as null (what we want), and is ~10x faster than the
# json module, which matters: every captured row's features pass through here.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> str:
    """Compact JSON that PostgreSQL and SQLite accept: NaN and infinities become null, and
    the NUL character (which PostgreSQL's JSON cannot hold) and lone surrogates become U+FFFD.

    Python's json module writes NaN as a bare ``NaN`` token, which is not JSON; a captured
    payload containing one must not make a whole batch unstorable.

    >>> dumps({"x": float("nan"), "y": [1.5]})
    '{"x":null,"y":[1.5]}'
    >>> dumps({"k": "a\\x00b"}) == '{"k":"a\\ufffdb"}'
    True
    """
    try:
        text = orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:
        # Types orjson refuses (say, integers beyond 64 bits, nesting past 255 levels):
        # the slow, general path.
        return _slow_dumps(value)
    if "\\u0000" in text:
        # PostgreSQL's JSON cannot hold the NUL character; it would refuse the whole batch.
        # Rare, so the common case pays only for the substring test.
        return _slow_dumps(value)
    return text


def _slow_dumps(value: Any) -> str:
    try:
        return json.dumps(_storable(value), separators=(",", ":"), ensure_ascii=False, default=str)
    except RecursionError:
        raise ValueError("the value nests too deeply to be stored as JSON") from None


def _storable(value: Any) -> Any:
    """``value`` with NaN and infinities as None, and NUL characters and lone surrogates
    (undecodable bytes, which no UTF-8 encoder takes) as U+FFFD."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    return value
