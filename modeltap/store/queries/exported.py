"""The newest value of every exported result: what a Prometheus scrape reads.

Only windows ending after ``since`` are read, through the index on ``window_end``, so the
cost of a scrape follows the number of series, not the age of the results table. Only the
columns a metric needs leave the database: of the details, the deciding test and the A/B
baseline.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from modeltap.schema import LatestValue
from modeltap.store.tables import detector_results

_KEY = ("model", "version", "detector", "feature")
_COLUMNS = ("model", "version", "detector", "feature", "window_end", "score", "alert", "threshold")
_DETAILS = ("test", "baseline")


def latest_values(connection: Connection, since: datetime) -> list[LatestValue]:
    """Per (model, version, detector, feature), the newest unsegmented result with a value.

    A window whose data was too thin (``insufficient_data``) does not hide the last number
    that was measured; segments (``segment_by``) stay in the store and ``monitor detect``.
    """
    table = detector_results
    # On SQLite, MATERIALIZED keeps the recent rows a query of their own, read through the
    # window_end index: folded into the ranking, SQLite walks the whole primary key in
    # partition order instead (it guesses a range keeps a quarter of the table), and the
    # scrape grew with the table. PostgreSQL, with statistics, picks the index anyway and
    # is faster with the CTE inlined.
    recent = (
        select(
            *(table.c[name] for name in (*_COLUMNS, "window_start")),
            *(table.c.details[key].as_string().label(key) for key in _DETAILS),
        )
        .where(
            table.c.window_end > since,
            table.c.segment == "",
            table.c.status == "ok",
            table.c.score.is_not(None),
        )
        .cte("recent")
        .prefix_with("MATERIALIZED", dialect="sqlite")
    )
    rank = func.row_number().over(
        partition_by=[recent.c[name] for name in _KEY],
        order_by=[recent.c.window_end.desc(), recent.c.window_start.desc()],
    )
    ranked = select(
        *(recent.c[name] for name in (*_COLUMNS, *_DETAILS)), rank.label("rank")
    ).subquery()
    statement = (
        select(*(ranked.c[name] for name in (*_COLUMNS, *_DETAILS)))
        .where(ranked.c.rank == 1)
        .order_by(*(ranked.c[name] for name in _KEY))
    )
    return [
        LatestValue(model, version, detector, feature, end, score, bool(alert), test or "",
                    baseline or "", threshold)
        for model, version, detector, feature, end, score, alert, threshold, test, baseline
        in connection.execute(statement).all()
    ]  # fmt: skip
