from __future__ import annotations

import json
import math
import re

from hypothesis import given
from hypothesis import strategies as st

from modeltap.codec import dumps

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def _stored(text: str) -> str:
    """What the store can hold of a string: NUL and lone surrogates become U+FFFD."""
    return re.sub(r"[\x00\ud800-\udfff]", "\ufffd", text)


def _finite_equal(original: object, decoded: object) -> bool:
    if isinstance(original, float) and not math.isfinite(original):
        return decoded is None
    if isinstance(original, str):
        return decoded == _stored(original)
    if isinstance(original, dict):
        # Keys change like strings; two keys that then coincide keep the later value.
        stored = {_stored(key): item for key, item in original.items()}
        return (
            isinstance(decoded, dict)
            and stored.keys() == decoded.keys()
            and all(_finite_equal(stored[key], decoded[key]) for key in stored)
        )
    if isinstance(original, list):
        return (
            isinstance(decoded, list)
            and len(original) == len(decoded)
            and all(_finite_equal(a, b) for a, b in zip(original, decoded, strict=True))
        )
    return original == decoded


@given(json_values)
def test_output_is_strict_json_and_keeps_every_finite_value(value: object) -> None:
    text = dumps(value)

    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    decoded = json.loads(text, parse_constant=refuse)
    assert _finite_equal(value, decoded)
