"""The backfill's label table keeps the last label of each key, in the order given, finds a
window's keys exactly, and crosses to another process without its hash table."""

from __future__ import annotations

import pickle
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.label_table import LabelTable

KEYS = st.lists(st.sampled_from(["r:a:0", "r:a:1", "r:b:0", "i:7", "r:é:0", "", "r:a:00"]))


def table(keys: list[str], values: Sequence[str | None]) -> LabelTable:
    return LabelTable.of(
        keys, np.asarray(values, dtype=object), np.arange(len(keys), dtype=np.float64)
    )


@given(KEYS)
def test_the_last_label_of_each_key_is_kept_in_the_order_given(keys: list[str]) -> None:
    values = [f"v{n}" for n in range(len(keys))]
    expected = pd.DataFrame(
        {"label": values, "label_received_at": np.arange(len(keys), dtype=np.float64)},
        index=pd.Index(keys, dtype=object),
    )
    expected = expected[~expected.index.duplicated(keep="last")]
    found = table(keys, values).frame()
    assert found.index.tolist() == expected.index.tolist()
    assert found["label"].tolist() == expected["label"].tolist()
    assert found["label_received_at"].tolist() == expected["label_received_at"].tolist()


def test_a_lookup_gives_each_keys_label_and_arrival_or_none_and_nan() -> None:
    labels = table(["r:a:0", "r:b:0", "r:a:0", "r:c:0"], ["1", "0", "2", None])
    label, arrived = labels.lookup(np.array(["r:c:0", "r:x:0", "r:a:0", "r:b:0"], dtype=object))
    assert label.tolist() == [None, None, "2", "0"]
    assert arrived[[0, 2, 3]].tolist() == [3.0, 2.0, 1.0]
    assert np.isnan(arrived[1])
    assert len(labels) == 3


def test_it_pickles_without_its_hash_table_and_finds_the_same() -> None:
    keys = [f"r:{n}:0" for n in range(1000)]
    labels = table(keys, [str(n % 3) for n in range(1000)])
    window = np.array(["r:5:0", "r:999:0", "r:1000:0"], dtype=object)
    before = labels.lookup(window)
    assert labels.__getstate__()["_index"] is None
    copy = pickle.loads(pickle.dumps(labels))
    after = copy.lookup(window)
    assert before[0].tolist() == after[0].tolist() == ["2", "0", None]
    assert np.array_equal(before[1], after[1], equal_nan=True)


def test_keys_values_and_times_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        LabelTable.of(["a", "b"], np.array(["1"], dtype=object), np.zeros(2))
