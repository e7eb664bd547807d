"""The serving rows of a window from PostgreSQL as one binary array per column and version,
turned into numpy arrays without a Python object per value.

``array_agg`` sends a window's column as one value; psycopg's array loader then builds a
Python list of a million floats, which numpy copies again (the serving read of a 1M-request
hour: 1.3 s of client CPU, and 60 MB resident left behind by the freed floats). PostgreSQL's
binary array format is a short header and then, for each element, its length and its bytes;
with no NULL among them (each column is coalesced) and fixed-width elements, that is a
strided record array numpy reads in place. Grouping by version sends each version's arrays
apart, so no version text is sent per request either.
"""

from __future__ import annotations

import functools
import struct
from datetime import datetime
from typing import TYPE_CHECKING, Any
from typing import cast as typed_as

from modeltap.errors import StorageDataError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt
    import pandas as pd
    from sqlalchemy.engine import Connection

# PostgreSQL's type oids of the arrays read here, and their elements' numpy types.
_ELEMENTS = {1022: ">f8", 1007: ">i4", 1000: "?"}  # float8[], int4[], bool[]
_HEADER = struct.Struct(">iii")  # dimensions, has NULLs, element type
_DIMENSION = struct.Struct(">ii")  # size, lower bound


def serving_frame(
    connection: Connection, model: str, start: datetime, end: datetime
) -> pd.DataFrame:
    """``version`` (category), ``latency_ms``, ``status_code`` and ``upstream_failed`` of the
    window's requests, grouped by version (in the sorted order of the versions)."""
    import numpy as np  # noqa: PLC0415 - pandas and numpy stay off the sidecar's path
    import pandas as pd  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    raw = connection.connection.driver_connection
    if raw is None:  # pragma: no cover - only for detached connections
        raise RuntimeError("connection has no driver connection")
    statement = sql.SQL(
        "SELECT version, array_agg(coalesce(latency_ms, 'NaN'::float8)), "
        "array_agg(status_code::int4), array_agg(error IS NOT NULL) FROM requests "
        "WHERE model = {model} AND ts >= {start} AND ts < {end} GROUP BY version"
    ).format(model=sql.Literal(model), start=sql.Literal(start), end=sql.Literal(end))
    with raw.cursor(binary=True) as cursor:
        for oid in _ELEMENTS:
            cursor.adapters.register_loader(oid, raw_loader())
        groups = sorted(cursor.execute(statement).fetchall(), key=lambda group: group[0])
    versions = [str(group[0]) for group in groups]
    latency = [fixed_array(group[1], ">f8").astype(np.float64) for group in groups]
    sizes = [values.size for values in latency]
    return pd.DataFrame(
        {
            "version": pd.Categorical.from_codes(
                typed_as("Sequence[int]", np.repeat(np.arange(len(versions)), sizes)),
                dtype=pd.CategoricalDtype(versions),
            ),
            "latency_ms": _joined(latency, np.float64),
            "status_code": _joined(
                [fixed_array(group[2], ">i4").astype(np.int64) for group in groups], np.int64
            ),
            "upstream_failed": _joined([fixed_array(group[3], "?") for group in groups], np.bool_),
        }
    )


def fixed_array(data: Any, element: str) -> npt.NDArray[Any]:
    """A one-dimensional binary array without NULLs of fixed-width ``element``s, read in
    place (in the element's byte order: convert with ``astype``)."""
    import numpy as np  # noqa: PLC0415

    view = memoryview(data)
    dimensions, has_nulls, _ = _HEADER.unpack_from(view, 0)
    if dimensions == 0:  # the empty array
        return np.empty(0, dtype=element)
    if dimensions != 1 or has_nulls:
        raise StorageDataError("expected a one-dimensional array without NULLs")
    size, _ = _DIMENSION.unpack_from(view, _HEADER.size)
    record = np.dtype([("length", ">i4"), ("value", element)])
    elements = np.frombuffer(view, dtype=record, count=size, offset=_HEADER.size + _DIMENSION.size)
    if size and not bool((elements["length"] == record["value"].itemsize).all()):
        raise StorageDataError(f"array elements are not {element} values")
    return elements["value"]


def _joined(parts: list[npt.NDArray[Any]], dtype: Any) -> npt.NDArray[Any]:
    import numpy as np  # noqa: PLC0415

    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


@functools.cache
def raw_loader() -> type:
    """A psycopg loader that hands the binary value over as it came."""
    from psycopg.adapt import Loader  # noqa: PLC0415
    from psycopg.pq import Format  # noqa: PLC0415

    class RawLoader(Loader):
        format = Format.BINARY

        def load(self, data: Any) -> Any:
            return data

    return RawLoader
