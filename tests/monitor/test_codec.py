from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from monitor.codec import dumps

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def _finite_equal(original: object, decoded: object) -> bool:
    if isinstance(original, float) and not math.isfinite(original):
        return decoded is None
    if isinstance(original, dict):
        return (
            isinstance(decoded, dict)
            and original.keys() == decoded.keys()
            and all(_finite_equal(original[key], decoded[key]) for key in original)
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
