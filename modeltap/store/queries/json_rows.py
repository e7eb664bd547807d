"""The detectors' feature rows from PostgreSQL as JSON lines, parsed by pyarrow on the client.

``json_frame`` reads the rows stored with packed numbers from those (``packed_rows``, far
cheaper still) and only the rows stored before migration 0008 as JSON lines.

Projecting each feature out of the jsonb in SQL (``postgres_rows_query``) costs the server
two key lookups, a numeric printed as text and parsed back per value: 5.8 s of its CPU for a
1M-row, 10-feature window, where printing each row's whole ``features`` once costs 2.0 s.
On two cores the server's CPU is the detectors' too. So this query sends one JSON object per
row, the stored features untouched beside the scalar columns, and pyarrow's JSON reader
(multi-threaded, exact: its doubles are the ones ``float8in`` gives for the same digits)
types them against the configured features.

The schema it parses against is strict: a numerical feature must be a JSON number or null,
a categorical one a string or null. Any other value (a number where text is configured, a
string in a numerical feature, an object, a score of NaN) makes pyarrow refuse the whole
read, and ``json_frame`` answers None: the caller then reads the window the SQL way, which
handles and counts every such value. A window with a stray type costs both reads; one
without any, the common case, costs one cheaper read and has no type violations to count.

How the lines leave the server depends on the window's size, when the caller knows it. COPY
streams them in bounded memory, but one protocol message per row, each handled in Python by
psycopg: 13 ms of client CPU for a window of 4,000 rows. A window known to be small is sent
as one value instead (``string_agg`` of its lines, loaded as bytes): 2 ms for the same rows.
Only a small one: the value is held whole on the server, in libpq and once more as bytes,
and aggregating a large window in bounded pieces costs the server a spill to disk.
"""

from __future__ import annotations

import functools
import io
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from modeltap.store.queries import packed_rows
from modeltap.store.queries.detectors import (
    FEATURE_PREFIX,
    CopyStream,
    RowQuery,
    arrow_frame,
    arrow_pool,
    concat_frames,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from psycopg import sql
    from sqlalchemy.engine import Connection

# The JSON keys of a row's scalar columns (the frame's column names), and of its features.
FEATURES_KEY = "features"


def postgres_json_rows_query(query: RowQuery) -> sql.Composable:
    """One JSON object per row: ``{"version": …, "ts": …, …, "features": {…}}``."""
    from psycopg import sql  # noqa: PLC0415 - pandas, pyarrow and psycopg load on use

    # Every part is text that is never NULL (a NULL would void the whole line): strings
    # through to_json, numbers as PostgreSQL prints them (exact and valid JSON, except the
    # non-finite doubles, which pyarrow refuses, sending the read down the SQL way).
    parts: list[tuple[str, str]] = [
        ("version", "to_json(p.version)::text"),
        ("ts", "extract(epoch FROM p.ts)::text"),
        ("prediction", "coalesce(to_json(p.prediction #>> '{}')::text, 'null')"),
        ("score", "coalesce(p.score::text, 'null')"),
    ]
    source = "predictions p"
    if query.with_labels:
        parts += [
            ("label", "coalesce(to_json(l.value #>> '{}')::text, 'null')"),
            ("label_received_at", "coalesce(extract(epoch FROM l.received_at)::text, 'null')"),
        ]
        source = "predictions p LEFT JOIN labels l ON l.label_key = p.label_key"
    if query.class_scores:
        parts.append(("class_scores", "coalesce(to_json(p.class_scores::text)::text, 'null')"))
    if query.numerical or query.categorical:
        parts.append((FEATURES_KEY, "p.features::text"))
    pieces: list[sql.Composable] = []
    for index, (key, expression) in enumerate(parts):
        opening = "{" if index == 0 else ","
        pieces += [sql.Literal(f'{opening}"{key}":'), sql.SQL(expression)]
    pieces.append(sql.Literal("}"))
    return sql.SQL("SELECT {line} FROM {source} WHERE {where}").format(
        line=sql.SQL(" || ").join(pieces),
        source=sql.SQL(source),
        where=sql.SQL(
            "p.model = {model} AND p.ts >= {start} AND p.ts < {end}"
            + (" AND p.layout IS NULL" if query.unpacked_only else "")
        ).format(
            model=sql.Literal(query.model),
            start=sql.Literal(query.start),
            end=sql.Literal(query.end),
        ),
    )


def json_frame(connection: Connection, query: RowQuery, expected: int = 0) -> pd.DataFrame | None:
    """The frame ``copy_frame`` reads for ``query`` (unmarked), or None if a value's JSON
    type is not its column's (see the module's docstring). ``expected`` is about how many
    rows the window holds (0: not known).

    The rows written with packed numbers are read from those (``packed_rows``), the rest
    (stored before migration 0008) as JSON lines.
    """
    packed = packed_rows.packed_frame(connection, query, expected)
    if packed is None:  # the packed numbers cannot serve this window
        return lines_frame(connection, query, expected)
    if packed.frame is None or not packed.unpacked:
        return packed.frame
    unpacked = lines_frame(connection, replace(query, unpacked_only=True), packed.unpacked)
    if unpacked is None or not len(packed.frame):
        return unpacked
    return concat_frames([packed.frame, unpacked])


def lines_frame(connection: Connection, query: RowQuery, expected: int) -> pd.DataFrame | None:
    """``json_frame`` of every row from its JSON; up to ``WHOLE_ROWS`` rows (``expected``,
    0 if not known) come as one value."""
    import pandas as pd  # noqa: PLC0415 - see postgres_json_rows_query
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    raw = connection.connection.driver_connection
    if raw is None:  # pragma: no cover - only for detached connections
        raise RuntimeError("connection has no driver connection")
    names, dtypes = query.names, query.dtypes
    read = _whole_table if 0 < expected <= WHOLE_ROWS else _streamed_table
    table = read(raw, query)
    if table is None:
        return None
    if table.num_rows == 0:
        return pd.DataFrame({name: pd.Series(dtype=dtypes[name]) for name in names})
    # A feature's values are the struct's child arrays, chunk by chunk: no copy.
    features = table.column(FEATURES_KEY).chunks if FEATURES_KEY in table.column_names else []
    columns = []
    for name in names:
        if name.startswith(FEATURE_PREFIX):
            key = name.removeprefix(FEATURE_PREFIX)
            column = pa.chunked_array([chunk.field(key) for chunk in features])
        else:
            column = table.column(name)
        if dtypes[name] == "category":
            column = pc.dictionary_encode(column, memory_pool=arrow_pool())
        columns.append(column)
    del table, features
    return arrow_frame(pa.table(columns, names=names), names, dtypes)


def _streamed_table(raw: Any, query: RowQuery) -> pa.Table | None:
    """The window's lines through COPY, parsed as they arrive; None for a stray type."""
    import pyarrow as pa  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    statement = sql.SQL("COPY ({}) TO STDOUT").format(postgres_json_rows_query(query))
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        stream = io.BufferedReader(CopyStream(iter(copy), _undouble), buffer_size=BLOCK)
        if not stream.peek(1):
            return pa.table({})
        try:
            return _parsed(stream, query)
        except pa.ArrowInvalid:
            # Drain what is left, or the connection is still inside the COPY.
            for _ in copy:
                pass
            return None


def _whole_table(raw: Any, query: RowQuery) -> pa.Table | None:
    """The window's lines as one value (``string_agg`` keeps the scan's order, as COPY
    does); None for a stray type."""
    import pyarrow as pa  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    statement = sql.SQL("SELECT string_agg(line, E'\\n') FROM ({}) lines(line)").format(
        postgres_json_rows_query(query)
    )
    with raw.cursor() as cursor:
        # As bytes, not str: pyarrow reads the UTF-8 as it came, with no decoding in between.
        cursor.adapters.register_loader("text", _bytes_loader())
        row = cursor.execute(statement).fetchone()
    lines = row[0] if row is not None else None
    if lines is None:  # string_agg of no rows
        return pa.table({})
    try:
        return _parsed(pa.BufferReader(lines), query)
    except pa.ArrowInvalid:
        return None


def _parsed(source: Any, query: RowQuery) -> pa.Table:
    import pyarrow.json as pjson  # noqa: PLC0415

    return pjson.read_json(
        source,
        read_options=pjson.ReadOptions(block_size=BLOCK),
        parse_options=_parse_options(query),
        memory_pool=arrow_pool(),
    )


@functools.cache
def _bytes_loader() -> type:
    from psycopg.adapt import Loader  # noqa: PLC0415

    class BytesLoader(Loader):
        def load(self, data: Any) -> bytes:
            return bytes(data)

    return BytesLoader


# A window of up to this many rows is read as one value: about 300 bytes a row, 15 MB.
WHOLE_ROWS = 50_000
# pyarrow parses a block per thread; a row longer than a block would straddle two and be
# refused (the read then goes the SQL way), so blocks are far longer than any plausible row.
# Not longer than that: each reader holds several blocks in flight, and two readers of
# 250,000-row slices peaked 40-50 MB higher with 8 MiB blocks than with 2 MiB (as fast).
BLOCK = 2 << 20


def _undouble(rows: bytes) -> bytes:
    # COPY's text format doubles each backslash and escapes nothing else here: JSON text
    # holds no raw tab, line break or other control character to escape.
    return rows.replace(b"\\\\", b"\\") if b"\\" in rows else rows


def _parse_options(query: RowQuery) -> Any:
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.json as pjson  # noqa: PLC0415

    # Categories arrive as plain strings (the JSON reader makes no dictionaries) and are
    # encoded afterwards.
    arrow = {"float64": pa.float64(), "category": pa.string(), "object": pa.string()}
    dtypes = query.dtypes
    fields = [
        pa.field(name, arrow[dtypes[name]])
        for name in query.names
        if not name.startswith(FEATURE_PREFIX)
    ]
    features = [
        pa.field(name, arrow[dtypes[FEATURE_PREFIX + name]])
        for name in (*query.numerical, *query.categorical)
    ]
    if features:
        fields.append(pa.field(FEATURES_KEY, pa.struct(features)))
    # Keys beyond the configured features are the model's other inputs: not read.
    return pjson.ParseOptions(explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore")


def no_violations(frame: pd.DataFrame, query: RowQuery) -> dict[str, dict[str, int]]:
    """What ``unmark`` counts for a frame ``json_frame`` read: every version present, with
    no value of a wrong type (the strict parse had none to let through)."""
    names = (*query.numerical, *query.categorical)
    present = frame["version"].value_counts()
    return {str(version): dict.fromkeys(names, 0) for version, n in present.items() if n}
