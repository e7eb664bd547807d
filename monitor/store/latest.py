"""The newest value of every exported result: what a Prometheus scrape reads.

Only windows ending after ``since`` are read, through the index on ``window_end``, so the
cost of a scrape follows the number of series, not the age of the results table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from monitor.schema import DetectorResult
from monitor.store.tables import detector_results

_KEY = ("model", "version", "detector", "feature")


def latest_values(connection: Connection, since: datetime) -> list[DetectorResult]:
    """Per (model, version, detector, feature), the newest unsegmented result with a value.

    A window whose data was too thin (``insufficient_data``) does not hide the last number
    that was measured; segments (``segment_by``) stay in the store and ``monitor detect``.
    """
    table = detector_results
    rank = func.row_number().over(
        partition_by=[table.c[name] for name in _KEY],
        order_by=[table.c.window_end.desc(), table.c.window_start.desc()],
    )
    ranked = (
        select(table, rank.label("rank"))
        .where(
            table.c.window_end > since,
            table.c.segment == "",
            table.c.status == "ok",
            table.c.score.is_not(None),
        )
        .subquery()
    )
    statement = (
        select(*(ranked.c[column.name] for column in table.columns))
        .where(ranked.c.rank == 1)
        .order_by(*(ranked.c[name] for name in _KEY))
    )
    return [DetectorResult(**row) for row in connection.execute(statement).mappings()]
