"""A prediction's features packed as doubles beside their JSON, for the detectors' reads.

Typing a window's features out of jsonb costs the server and the client a parse of every
value (see ``queries.json_rows``). So each stored row also carries its features as one
``bytea`` of little-endian doubles, a value per key, and a ``layout``: a 63-bit hash of the
keys in the order they are packed. That order is jsonb's own (shorter keys first, then by
their bytes), so a reader recovers a layout's keys from any row of it, ``features::text``
printing them in that order, and checks them against the hash.

Every key is packed, whatever its value, so a layout changes only with the key set:
- a JSON number is its double (as PostgreSQL reads the stored digits: correctly rounded,
  and zero without a sign, numeric having no negative zero);
- null is NaN (JSON has no NaN, so a NaN is always a null);
- anything else (a string, a boolean, an array, an object, a number no double holds) is
  ``OTHER``, a NaN of its own bit pattern: for a numerical feature that is a value of the
  wrong type, which the reader hands to the SQL read that counts those.

Pure Python: the sidecar's SQL sink writes through the store without numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping
from typing import Any

# A quiet NaN with a payload: no arithmetic makes it, and struct keeps its bits.
OTHER_BITS = 0x7FF8_6D74_0000_0001
_OTHER = struct.unpack("<d", OTHER_BITS.to_bytes(8, "little"))[0]
_LAYOUTS_KEPT = 1024  # distinct key orders remembered by a writer process


def jsonb_order(keys: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``keys`` as jsonb stores an object's keys: by length in UTF-8, then bytewise."""
    encoded = sorted((len(key.encode()), key.encode(), key) for key in keys)
    return tuple(key for _, _, key in encoded)


def layout_id(ordered: tuple[str, ...] | list[str]) -> int:
    """The layout of keys packed in this order: a signed 64-bit hash of them."""
    digest = hashlib.blake2b(json.dumps(list(ordered)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def packed(features: Mapping[str, Any]) -> tuple[int, bytes]:
    """(layout, values) of one row's features."""
    known = _LAYOUTS.get(tuple(features))
    if known is None:
        known = _remember(tuple(features))
    layout, ordered, packer = known
    values = [features[key] for key in ordered]
    # The common case inline: a finite float (v - v is 0.0 for those only) is itself.
    return layout, packer.pack(
        *[v + 0.0 if type(v) is float and v - v == 0.0 else _double(v) for v in values]
    )


_LAYOUTS: dict[tuple[str, ...], tuple[int, tuple[str, ...], struct.Struct]] = {}


def _remember(keys: tuple[str, ...]) -> tuple[int, tuple[str, ...], struct.Struct]:
    if len(_LAYOUTS) >= _LAYOUTS_KEPT:  # callers whose keys keep changing: start again
        _LAYOUTS.clear()
    ordered = jsonb_order(keys)
    known = (layout_id(ordered), ordered, struct.Struct(f"<{len(ordered)}d"))
    _LAYOUTS[keys] = known
    return known


def _double(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float(_OTHER)
    try:
        number = float(value)
    except OverflowError:  # an integer past the doubles' range
        return float(_OTHER)
    # + 0.0 drops the sign of a negative zero; inf and NaN are no JSON numbers.
    return number + 0.0 if math.isfinite(number) else float(_OTHER)
