"""Human-friendly durations ("30s", "5m", "7d") and sizes ("512MiB") for the config file."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$")
_SIZE_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}


def parse_duration(value: object) -> object:
    """Turn "90s", "5m", "1.5h", "7d" or a number of seconds into a timedelta.

    >>> parse_duration("5m")
    datetime.timedelta(seconds=300)
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h or 7d")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2)])
    raise ValueError(
        f"expected a duration such as 30s, 5m, 1h or 7d (units ms, s, m, h, d, w), got {value!r}"
    )


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of a duration in the units parse_duration reads."""
    millis = round(value.total_seconds() * 1000)
    for unit in ("w", "d", "h", "m", "s"):
        step = round(_DURATION_UNITS[unit] * 1000)
        if millis and millis % step == 0:
            return f"{millis // step}{unit}"
    return f"{millis}ms"


def parse_size(value: object) -> object:
    """Turn "512MiB", "10MB" or a number of bytes into an int.

    >>> parse_size("1KiB")
    1024
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512KiB, 10MiB or 1GB")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _SIZE_UNITS[match.group(2) or "B"])
    raise ValueError(
        f"expected a size such as 512KiB, 10MiB or 1GB (units B, KB, MB, GB, KiB, MiB, GiB), "
        f"got {value!r}"
    )


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
ByteSize = Annotated[int, BeforeValidator(parse_size)]
