"""Features packed as doubles when written, and read back from those on the real PostgreSQL.

The packed read must give the frame the SQL projection gives, bit for bit, and step aside
to the JSON lines whenever it cannot vouch for a window (too many layouts, keys that do not
hash to their layout); the equality of random windows is in ``test_json_rows``.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine, text

from modeltap.schema import EventBatch, LabelRecord
from modeltap.store import SqlStore
from modeltap.store import packing as pk
from modeltap.store.queries import detectors as q
from modeltap.store.queries import json_rows, packed_rows
from tests.modeltap.store.factories import T0, prediction, request

HOUR = timedelta(hours=1)
_models = itertools.count()


def _doubles(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 8], "little") for i in range(0, len(data), 8)]


def test_each_value_packs_as_its_double_a_null_or_another_type() -> None:
    layout, data = pk.packed(
        {"b": 2, "a": -0.0, "cc": None, "d": "7", "e": True, "f": [1], "g": 2**1100, "h": 0.1}
    )
    # jsonb's order: shorter keys first, then bytewise.
    assert layout == pk.layout_id(("a", "b", "d", "e", "f", "g", "h", "cc"))
    bits = _doubles(data)
    other = pk.OTHER_BITS
    assert bits[:2] == [struct.unpack("<Q", struct.pack("<d", v))[0] for v in (0.0, 2.0)]
    assert bits[2:6] == [other] * 4  # "7", True, [1], an integer past the doubles
    assert struct.unpack("<d", data[48:56])[0] == 0.1
    assert math.isnan(struct.unpack("<d", data[56:])[0])
    assert bits[7] != other
    assert pk.packed({"h": 0.1, "a": 1})[0] == pk.packed({"a": 5, "h": None})[0]
    assert pk.packed({"a": 1})[0] != pk.packed({"a": 1, "b": 1})[0]


def test_the_packed_order_is_the_order_postgresql_keeps(postgres_url: str) -> None:
    keys = ["é", "z", "ab", "a", "Z", "éa", "日本", "b" * 3, "aé", "ä", "\\", '"q"']
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        result = connection.execute(
            text("SELECT jsonb_object_keys(CAST(:o AS jsonb))"),
            {"o": json.dumps(dict.fromkeys(keys, 1))},
        )
        stored = result.scalars().all()
    engine.dispose()
    assert tuple(stored) == pk.jsonb_order(keys)


def _write(store: SqlStore, model: str, features: list[dict[str, Any]], after: int = 0) -> None:
    """Rows a second apart from ``after`` seconds past T0, two versions, most labelled."""
    base = 100_000 * (1 + next(_models))
    moments = [T0 + timedelta(seconds=after + n) for n in range(len(features))]
    store.write(
        EventBatch(
            [
                request(base + n, ts=at, model=model, version=f"v{n % 2}")
                for n, at in enumerate(moments)
            ],
            [
                prediction(base + n, ts=at, model=model, version=f"v{n % 2}", features=values)
                for n, (at, values) in enumerate(zip(moments, features, strict=True))
            ],
            [
                LabelRecord(n % 3, at, at + HOUR, f"req-{base + n}", 0, model=model)
                for n, at in enumerate(moments)
                if n % 4
            ],
        )
    )


def _read(
    engine: Engine, query: q.RowQuery, monkeypatch: pytest.MonkeyPatch
) -> tuple[pd.DataFrame, pd.DataFrame, list[int]]:
    """The fast read, the SQL projection, and how many rows went the JSON-lines way."""
    lines: list[int] = []
    real = json_rows.lines_frame

    def spy(connection: Any, asked: q.RowQuery, expected: int) -> Any:
        frame = real(connection, asked, expected)
        lines.append(-1 if frame is None else len(frame))
        return frame

    monkeypatch.setattr(json_rows, "lines_frame", spy)
    with engine.connect() as connection:
        fast = json_rows.json_frame(connection, query)
        projected = q.copy_frame(
            connection, q.postgres_rows_query(query), query.names, query.dtypes
        )
    assert fast is not None
    return fast, projected, lines


def _calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[Any, ...]]:
    """The arguments of every call of ``packed_rows``' ``name`` from now on."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(packed_rows, name)

    def counted(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(packed_rows, name, counted)
    return calls


def _assert_same(one: pd.DataFrame, two: pd.DataFrame) -> None:
    one, two = (frame.sort_values("ts").reset_index(drop=True) for frame in (one, two))
    assert one.dtypes.to_dict() == two.dtypes.to_dict()
    for column in one.columns:
        if one[column].dtype == "float64":
            assert one[column].to_numpy().tobytes() == two[column].to_numpy().tobytes(), column
        else:
            assert one[column].astype(object).tolist() == two[column].astype(object).tolist()


ODD: list[dict[str, Any]] = [
    {"x": -0.0, "y": 2**70, "é": "k", "c": "a"},
    {"x": 5e-324, "y": None, "c": None},
    {"x": 1.7976931348623157e308, "y": -(2**53) - 1, "c": "日本", "extra": [1, {"a": 2}]},
    {"y": 0.1, "c": "tab\there \\N"},
]


def test_packed_rows_read_without_their_json_as_the_projection_does(
    opened: tuple[SqlStore, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, engine = opened
    model = f"packed{next(_models)}"
    _write(store, model, ODD * 5)
    query = q.RowQuery(model, T0, T0 + HOUR, ["x", "y", "absent"], ["c", "é"], with_labels=True)
    fast, projected, lines = _read(engine, query, monkeypatch)
    assert lines == []  # every row from its packed numbers
    _assert_same(fast, projected)
    assert fast.sort_values("ts")["feature:x"].tolist()[:3] == [0.0, 5e-324, 1.7976931348623157e308]


def test_a_window_in_several_pieces_reads_as_in_one(
    opened: tuple[SqlStore, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, engine = opened
    model = f"pieces{next(_models)}"
    _write(store, model, [{"x": float(n), "c": f"k{n % 3}"} for n in range(40)])
    query = q.RowQuery(model, T0, T0 + HOUR, ["x"], ["c"], with_labels=True)
    whole, projected, _ = _read(engine, query, monkeypatch)
    monkeypatch.setattr(packed_rows, "PIECE_ROWS", 3)
    pieces = _calls(monkeypatch, "group_query")
    pieced, _, lines = _read(engine, query, monkeypatch)
    assert len(pieces) == 14
    assert lines == []
    _assert_same(pieced, whole)
    _assert_same(pieced, projected)


def test_windows_it_cannot_vouch_for_are_read_from_their_json(
    opened: tuple[SqlStore, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, engine = opened
    many, forged = f"many{next(_models)}", f"forged{next(_models)}"
    # A key set per row, past the layouts a piece is read in.
    _write(store, many, [{"x": float(n), f"k{n}": 1} for n in range(packed_rows.MAX_LAYOUTS + 1)])
    _write(store, forged, [{"x": float(n), "c": "a"} for n in range(10)])
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE predictions SET layout = 12345 WHERE model = :m"), {"m": forged}
        )
    for model, rows in ((many, packed_rows.MAX_LAYOUTS + 1), (forged, 10)):
        query = q.RowQuery(model, T0, T0 + HOUR, ["x"], ["c"])
        fast, projected, lines = _read(engine, query, monkeypatch)
        assert lines[-1:] == [rows]
        _assert_same(fast, projected)


def test_a_layout_new_to_a_read_model_is_looked_up_after_the_stream(
    opened: tuple[SqlStore, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a model's layouts are known, a window is read without listing them first; a
    layout that then shows up waits for the stream's end, and a forged one is refused."""
    store, engine = opened
    model = f"later{next(_models)}"
    _write(store, model, [{"x": float(n), "c": "a"} for n in range(6)])
    query = q.RowQuery(model, T0, T0 + HOUR, ["x"], ["c"], with_labels=True)
    _read(engine, query, monkeypatch)  # the model's layouts, now known to this process
    listed = _calls(monkeypatch, "_layouts")
    _write(store, model, [{"x": float(n), "c": "b", f"new{n}": n} for n in range(3)], after=60)
    with engine.connect() as connection:
        fast = json_rows.json_frame(connection, query, expected=9)
        projected = q.copy_frame(
            connection, q.postgres_rows_query(query), query.names, query.dtypes
        )
    assert listed == []
    assert fast is not None
    _assert_same(fast, projected)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE predictions SET layout = 777 WHERE model = :m AND features ? 'new0'"),
            {"m": model},
        )
    with engine.connect() as connection:
        assert packed_rows.packed_frame(connection, query, expected=9) is None
        # The stream was read to its end: the transaction still answers.
        assert json_rows.json_frame(connection, query, expected=9) is not None
