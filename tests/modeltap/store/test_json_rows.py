"""The fast reads of feature rows against the SQL projection, on the real PostgreSQL.

``json_frame`` reads rows stored with packed numbers from those and older rows as JSON
lines; either is only a faster way to the same frame: for any window whose values have
their configured types it must give exactly what ``copy_frame`` over ``postgres_rows_query``
gives, bit for bit, and for any other window it must step aside (None) and leave the
connection usable, so the SQL read can count the violations. Both ways the JSON lines leave
the server, COPY (streamed) and one ``string_agg`` value (a window known to be small), must
give that same frame, row for row.
"""

from __future__ import annotations

import itertools
import math
from datetime import timedelta
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from modeltap.schema import EventBatch, LabelRecord, PredictionRecord, RequestRecord
from modeltap.store import SqlStore
from modeltap.store.queries import detectors as q
from modeltap.store.queries import json_rows
from tests.modeltap.store.factories import T0, prediction, request, write_before_0008

HOUR = timedelta(hours=1)
NUMERICAL = ["x", "y"]
CATEGORICAL = ["c", "d"]
_models = itertools.count()


def _both(engine: Engine, query: q.RowQuery) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """The JSON read (checked the same both ways out of the server) and the SQL projection."""
    with engine.connect() as connection:
        streamed = json_rows.json_frame(connection, query)
        projected = q.copy_frame(
            connection, q.postgres_rows_query(query), query.names, query.dtypes
        )
        whole = json_rows.json_frame(connection, query, expected=max(len(projected), 1))
    assert (streamed is None) == (whole is None)
    if streamed is not None and whole is not None:
        pd.testing.assert_frame_equal(streamed, whole, check_exact=True)
    return streamed, projected


def _assert_same(fast: pd.DataFrame, projected: pd.DataFrame) -> None:
    one, two = (
        frame.sort_values(["ts", "score"]).reset_index(drop=True) for frame in (fast, projected)
    )
    assert list(one.columns) == list(two.columns)
    assert one.dtypes.to_dict() == two.dtypes.to_dict()
    for column in one.columns:
        if one[column].dtype == "float64":
            # Bit for bit, NaN included: equal doubles are what "exact" means here.
            assert one[column].to_numpy().tobytes() == two[column].to_numpy().tobytes(), column
        elif one[column].dtype == "category":
            assert list(one[column].cat.categories) == list(two[column].cat.categories), column
            assert (one[column].cat.codes == two[column].cat.codes).all(), column
        else:
            assert one[column].tolist() == two[column].tolist(), column


texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda v: v != 0 or math.copysign(1, v) > 0
    ),
    st.integers(-(2**70), 2**70),
    st.none(),
)
rows = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "x": numbers,
            "y": numbers,
            "c": st.one_of(texts, st.none()),
            "d": st.one_of(st.sampled_from(["a", "\\N", '"', "\\", "tab\there", "é"]), st.none()),
            "other": st.one_of(texts, st.integers(), st.lists(st.integers(), max_size=2)),
        },
    ),
    min_size=1,
    max_size=12,
)
rows_apart = st.tuples(
    rows,
    st.lists(st.sampled_from(["v1", "v 2", 'v"3']), min_size=12, max_size=12),
    st.lists(
        st.one_of(st.integers(0, 2), texts, st.booleans(), st.none()), min_size=12, max_size=12
    ),
    st.lists(st.one_of(st.floats(0, 1), st.none()), min_size=12, max_size=12),
    st.lists(st.one_of(st.none(), st.integers(0, 1), texts), min_size=12, max_size=12),
)


def _batch(model: str, features: list[dict[str, Any]], versions: int = 1) -> EventBatch:
    """Rows of one model, one a second from T0, with event ids no other test uses."""
    base = 100_000 * next(_models)
    moments = [T0 + timedelta(seconds=n) for n in range(len(features))]
    return EventBatch(
        [
            request(base + n, ts=at, model=model, version=f"v{n % versions}")
            for n, at in enumerate(moments)
        ],
        [
            prediction(base + n, ts=at, model=model, version=f"v{n % versions}", features=values)
            for n, (at, values) in enumerate(zip(moments, features, strict=True))
        ],
    )


def _write(store: SqlStore, model: str, drawn: Any, unpacked: int = 0) -> None:
    """The drawn rows, the first ``unpacked`` of them as stored before migration 0008."""
    features, versions, answers, scores, truths = drawn
    requests, predictions, labels = [], [], []
    for n, values in enumerate(features):
        at = T0 + timedelta(seconds=n)
        requests.append(RequestRecord(f"{model}-{n}", f"req-{n}", model, versions[n], at, 1.0, 200))
        predictions.append(
            PredictionRecord(
                f"{model}-{n}", 0, f"req-{n}", model, versions[n], at, values, answers[n], scores[n]
            )
        )
        if truths[n] is not None:
            labels.append(LabelRecord(truths[n], at, at + HOUR, f"req-{n}", 0, model=model))
    write_before_0008(store, EventBatch(requests[:unpacked], predictions[:unpacked]))
    store.write(EventBatch(requests[unpacked:], predictions[unpacked:], labels))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=rows_apart, unpacked=st.integers(0, 12))
def test_well_typed_rows_read_fast_equal_the_sql_projection(
    opened: tuple[SqlStore, Engine], drawn: Any, unpacked: int
) -> None:
    """Packed rows, rows stored before packing, and windows of both."""
    store, engine = opened
    model = f"m{next(_models)}"
    _write(store, model, drawn, unpacked)
    query = q.RowQuery(model, T0, T0 + HOUR, NUMERICAL, CATEGORICAL, with_labels=True)
    fast, projected = _both(engine, query)
    assert fast is not None
    _assert_same(fast, projected)


def test_full_precision_doubles_and_class_scores_read_alike(
    opened: tuple[SqlStore, Engine],
) -> None:
    store, engine = opened
    rng = np.random.default_rng(11)
    values = [float(v) for v in rng.normal(0, 1e6, 400)] + [5e-324, 1.7976931348623157e308]
    moments = [T0 + timedelta(seconds=n) for n in range(len(values))]
    ids = [10**7 + n for n in range(len(values))]
    store.write(
        EventBatch(
            [request(n, ts=at, model="precise") for n, at in zip(ids, moments, strict=True)],
            [
                PredictionRecord(
                    event_id=f"evt-{n}",
                    row_index=0,
                    request_id=f"req-{n}",
                    model="precise",
                    version="v1",
                    ts=at,
                    features={"x": value, "c": "k"},
                    prediction="b",
                    score=float(rng.uniform()),
                    class_scores=[0.25, 0.75] if n % 2 else {"a\\b": 0.5, "é": 0.5},
                )
                for n, at, value in zip(ids, moments, values, strict=True)
            ],
        )
    )
    query = q.RowQuery("precise", T0, T0 + HOUR, ["x"], ["c"], class_scores=True)
    fast, projected = _both(engine, query)
    assert fast is not None
    _assert_same(fast, projected)
    assert fast.sort_values("ts")["feature:x"].tolist() == values


@pytest.mark.parametrize(
    ("features", "wrong"),
    [
        ({"x": "41"}, "text where a number belongs"),
        ({"x": True}, "a boolean where a number belongs"),
        ({"x": [1]}, "a list where a number belongs"),
        ({"c": 3}, "a number where text belongs (a valid category, spelled as JSON does)"),
        ({"c": False}, "a boolean where text belongs"),
        ({"c": {"a": 1}}, "an object where text belongs"),
    ],
)
@pytest.mark.parametrize("expected", [0, 51], ids=["streamed", "whole"])
@pytest.mark.parametrize("packed", [True, False], ids=["packed", "unpacked"])
def test_a_value_of_another_type_sends_the_read_the_sql_way(
    opened: tuple[SqlStore, Engine],
    features: dict[str, Any],
    wrong: str,
    expected: int,
    packed: bool,
) -> None:
    store, engine = opened
    model = f"odd{next(_models)}"
    values = [*[{"x": 1.5, "c": "k"}] * 50, features]
    (store.write if packed else partial(write_before_0008, store))(_batch(model, values))
    query = q.RowQuery(model, T0, T0 + HOUR, ["x"], ["c"])
    with engine.connect() as connection:
        assert json_rows.json_frame(connection, query, expected) is None, wrong
        # The COPY was drained: the same connection still answers.
        again = q.copy_frame(connection, q.postgres_rows_query(query), query.names, query.dtypes)
    assert len(again) == 51
    frame, counts = store.read_rows_counted(
        model, T0, T0 + HOUR, numerical=["x"], categorical=["c"], expected=expected
    )
    assert counts == store.type_violations(
        model, T0, T0 + HOUR, {"x": "numerical", "c": "categorical"}
    )
    assert len(frame) == 51


def test_a_window_of_well_typed_rows_is_counted_without_the_sql_read(
    opened: tuple[SqlStore, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = opened
    model = f"clean{next(_models)}"
    store.write(_batch(model, [{"age": n, "plan": "pro"} for n in range(10)], versions=2))

    def refused(*_: Any) -> None:
        raise AssertionError("the SQL projection ran for a well-typed window")

    monkeypatch.setattr(q, "copy_frame", refused)
    frame, counts = store.read_rows_counted(
        model, T0, T0 + HOUR, numerical=["age"], categorical=["plan"]
    )
    assert len(frame) == 10
    assert counts == {"v0": {"age": 0, "plan": 0}, "v1": {"age": 0, "plan": 0}}
    assert sorted(frame["feature:age"]) == list(range(10))
    assert counts == store.type_violations(
        model, T0, T0 + HOUR, {"age": "numerical", "plan": "categorical"}
    )


@pytest.mark.parametrize("expected", [0, 10], ids=["streamed", "whole"])
def test_an_empty_window_reads_as_typed_empty_columns(
    opened: tuple[SqlStore, Engine], expected: int
) -> None:
    _, engine = opened
    query = q.RowQuery("nobody", T0, T0 + HOUR, ["x"], ["c"], with_labels=True)
    with engine.connect() as connection:
        frame = json_rows.json_frame(connection, query, expected)
    assert frame is not None
    assert list(frame.columns) == query.names
    assert frame.empty
    assert frame.dtypes.astype(str).to_dict() == {
        name: str(dtype) for name, dtype in query.dtypes.items() if name in query.names
    }


def test_only_a_window_known_to_be_small_is_read_as_one_value(
    opened: tuple[SqlStore, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, engine = opened
    model = f"size{next(_models)}"
    write_before_0008(store, _batch(model, [{"x": float(n), "c": "k"} for n in range(20)]))
    query = q.RowQuery(model, T0, T0 + HOUR, ["x"], ["c"])
    ways: list[str] = []
    for name in ("_whole_table", "_streamed_table"):
        real = getattr(json_rows, name)

        def spy(*args: Any, _real: Any = real, _name: str = name) -> Any:
            ways.append(_name)
            return _real(*args)

        monkeypatch.setattr(json_rows, name, spy)
    with engine.connect() as connection:
        for expected in (0, 20, json_rows.WHOLE_ROWS, json_rows.WHOLE_ROWS + 1):
            frame = json_rows.lines_frame(connection, query, expected)
            assert frame is not None
            assert len(frame) == 20
        # Through json_frame the unpacked rows are counted first: a size known.
        assert json_rows.json_frame(connection, query) is not None
    assert ways == [
        "_streamed_table",
        "_whole_table",
        "_whole_table",
        "_streamed_table",
        "_whole_table",
    ]
