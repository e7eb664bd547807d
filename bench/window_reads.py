"""What one window's reads cost as history piles up: they should cost the window, not the days.

Every detector run reads one window of one model: its prediction rows (typed features and
labels), serving rows, type violations, event counts, and which windows got new labels. A
day of traffic is written at a time; after 1, 3 and 10 days (by default) the same reads of
one hour on the newest day are timed. The baseline is the first day's figure, measured in
the same run: the ratios show whether a read grows with the history kept. Nothing is
asserted on time.

Run: .venv/bin/python bench/window_reads.py [--sqlite | --postgres URL] [--days 10]
     [--per-day 100000]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_store_options, median_ms, store_from_options
from modeltap.schema import EventBatch, LabelRecord, PredictionRecord, RequestRecord
from modeltap.store import SqlStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FIVE_MINUTES = timedelta(minutes=5)
MODEL = "churn"


def day_of_traffic(day: int, per_day: int) -> list[EventBatch]:
    """One day of requests with one row each, two versions; each labelled an hour later."""
    step = DAY / per_day
    batches = []
    for first in range(0, per_day, 20_000):
        requests, rows, labels = [], [], []
        for i in range(first, min(first + 20_000, per_day)):
            n = day * per_day + i
            ts = T0 + day * DAY + i * step
            version = "v2" if n % 4 == 0 else "v1"
            event_id = f"e{n}"
            requests.append(RequestRecord(event_id, f"r{n}", MODEL, version, ts, 12.0 + n % 7, 200))
            rows.append(
                PredictionRecord(event_id, 0, f"r{n}", MODEL, version, ts,
                                 {"age": 20 + n % 60, "plan": "pro" if n % 3 else "free"},
                                 n % 2, 0.5)
            )  # fmt: skip
            labels.append(LabelRecord(n % 2, ts, ts + HOUR, request_id=f"r{n}", row_index=0))
        batches.append(EventBatch(requests, rows, labels))
    return batches


def reads(store: SqlStore, day: int) -> dict[str, Callable[[], object]]:
    """The reads of one detector run over hour 12 of ``day``."""
    start = T0 + day * DAY + 12 * HOUR
    end = start + HOUR
    arrived = end + 6 * FIVE_MINUTES
    return {
        "rows+labels": lambda: store.read_rows(
            MODEL, start, end, numerical=["age"], categorical=["plan"], with_labels=True
        ),
        "serving": lambda: store.read_serving(MODEL, start, end),
        "violations": lambda: store.type_violations(
            MODEL, start, end, {"age": "numerical", "plan": "categorical"}
        ),
        "counts": lambda: store.event_counts(MODEL, start, end, HOUR),
        # Labels come an hour late: those received over five minutes of the next hour.
        "new labels": lambda: store.labelled_windows(
            MODEL, since=arrived, until=arrived + FIVE_MINUTES, earliest=end - 7 * DAY, window=HOUR
        ),
    }


def run(url: str, days: int, per_day: int) -> None:
    store = SqlStore.open(url, migrate=True)
    checkpoints = sorted({1, 3, days} & set(range(1, days + 1)))
    names = list(reads(store, 0))
    print(f"{'history':>8} {'rows':>10} " + " ".join(f"{name:>12}" for name in names))
    first: dict[str, float] = {}
    for day in range(days):
        for batch in day_of_traffic(day, per_day):
            store.write(batch)
        if day + 1 not in checkpoints:
            continue
        if store.engine.dialect.name == "postgresql":
            # What autovacuum does over real days; here days pass in seconds.
            with store.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
        timings = {name: median_ms(work, 5) for name, work in reads(store, day).items()}
        first = first or timings
        print(f"{day + 1:>7}d {(day + 1) * per_day:>10,} "
              + " ".join(f"{timings[name]:>9.1f} ms" for name in names))  # fmt: skip
    store.close()
    print(f"{'ratio':>8} {'last/1d':>10} "
          + " ".join(f"{timings[name] / first[name]:>11.2f}x" for name in names))  # fmt: skip
    print("goal: flat (~1x): a window's reads cost the window, however much history is kept")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_options(parser)  # SQLite unless --postgres is given
    parser.add_argument("--days", type=int, default=10, help="days of history written")
    parser.add_argument("--per-day", type=int, default=100_000, help="requests per day")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 small days")
    args = parser.parse_args(argv)
    days, per_day = (3, 2_000) if args.quick else (args.days, args.per_day)
    with store_from_options(args) as (database, url):
        print(f"{database}, {days} days of {per_day:,} requests (one row, one label each)")
        run(url, days, per_day)
    return 0


if __name__ == "__main__":
    sys.exit(main())
