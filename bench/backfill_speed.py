"""`monitor backfill` over a month of traffic: every detector, from PostgreSQL and from a Parquet
folder, against an Evidently 0.7 report per window (the loop Evidently's Grafana example uses).

A scratch PostgreSQL database gets ``--days`` days of ``--per-day`` requests (one prediction
row each, 6 features, two versions, labels for 60% of rows two hours later, drift planted in
the last quarter); the same rows are exported to a Parquet folder partitioned by day, with
their labels in a file, as a warehouse export would be. The reference is fitted from the
first day, and the database vacuumed, analysed and checkpointed, as months-old history would
be. Then, each in a fresh process so its peak memory is its own (worker processes'
included):

- ``monitor backfill`` over every hourly window from the store, and from the Parquet folder
  (``--source DIR --labels FILE --recompute``), every detector, ``--workers`` processes;
- Evidently: for a sample of the same windows, the window's rows read from the same store
  and one ``Report([DataDriftPreset(), DataSummaryPreset(), ClassificationPreset()])`` run
  against the reference, single process; its time per window is scaled to every window.

Evidently has no counterpart for the serving (latency, error rate) and A/B detectors, so the
baseline does less work than modeltap. Goal: modeltap ≤ 60 s for 30 days x 100k/day. Nothing
is asserted on time; the scratch database is dropped however the run ends.

Run: .venv/bin/python bench/backfill_speed.py [--postgres URL] [--days 30] [--per-day 100000]
     [--workers 2] [--sample 24]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently: no telemetry from a benchmark

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from sqlalchemy.exc import DBAPIError

from bench.common import scratch_database
from detectors import fitting
from detectors.settings import ModelSettings
from modeltap.config import MonitorConfig
from modeltap.schema import EventBatch, LabelRecord, PredictionRecord, RequestRecord
from modeltap.store import SqlStore
from monitor.cli import cli

MODEL = "bench"
T0 = datetime(2026, 10, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
NUMERICAL = ["age", "income", "tenure", "balance"]
CATEGORICAL = ["plan", "region"]
BATCH = 20_000


def config(url: str) -> dict[str, Any]:
    return {
        "storage": {"url": url},
        "models": [
            {
                "name": MODEL,
                "task": "classification",
                "positive_class": 1,
                "segment_by": "plan",
                "features": [{"name": n, "type": "numerical"} for n in NUMERICAL]
                + [{"name": n, "type": "categorical"} for n in CATEGORICAL],
            }
        ],
        "detectors": {"window": "1h", "label_horizon": "3h"},
    }


def day_frame(day: int, per_day: int, days: int) -> pd.DataFrame:
    """One day of traffic as a warehouse export has it: one row per request, built by numpy."""
    rng = np.random.default_rng(day)
    drifted = day >= days * 3 // 4
    offsets = np.sort(rng.uniform(0, DAY.total_seconds(), per_day))
    # Microseconds, as the store keeps them.
    ts = (pd.Timestamp(T0 + day * DAY) + pd.to_timedelta(offsets, unit="s")).floor("us")
    truth = rng.integers(0, 2, per_day)
    predicted = np.where(rng.uniform(size=per_day) < 0.85, truth, 1 - truth)
    ids = [f"d{day}-{i}" for i in range(per_day)]
    return pd.DataFrame(
        {
            "ts": ts,
            "request_id": ids,
            "row_index": 0,
            "version": np.where(rng.uniform(size=per_day) < 0.9, "v1", "v2"),
            "age": rng.normal(48 if drifted else 40, 11, per_day).round(1),
            "income": rng.lognormal(10, 0.5, per_day).round(2),
            "tenure": rng.integers(1, 72, per_day).astype(float),
            "balance": rng.normal(1000, 300, per_day).round(2),
            "plan": rng.choice(["basic", "pro", "enterprise"], per_day, p=[0.6, 0.3, 0.1]),
            "region": rng.choice([f"r{i}" for i in range(12)], per_day),
            "prediction": predicted,
            "score": np.where(predicted == 1, 0.8, 0.2),
            "latency_ms": rng.lognormal(3.2, 0.4, per_day).round(2),
            "status_code": np.where(rng.uniform(size=per_day) < 0.01, 500, 200),
            "truth": truth,
            "labelled": rng.uniform(size=per_day) < 0.6,
        }
    )


def batches(frame: pd.DataFrame) -> Iterator[EventBatch]:
    """The day's rows as the store's event batches (what a sidecar would have written)."""
    records = frame.to_dict("records")
    for first in range(0, len(records), BATCH):
        requests, predictions, labels = [], [], []
        for row in records[first : first + BATCH]:
            ts = row["ts"].to_pydatetime()
            rid, version = row["request_id"], row["version"]
            requests.append(
                RequestRecord(rid, rid, MODEL, version, ts, row["latency_ms"], row["status_code"])
            )
            features = {name: row[name] for name in NUMERICAL + CATEGORICAL}
            predictions.append(
                PredictionRecord(rid, 0, rid, MODEL, version, ts, features,
                                 int(row["prediction"]), row["score"])
            )  # fmt: skip
            if row["labelled"]:
                arrived = ts + 2 * HOUR
                labels.append(LabelRecord(int(row["truth"]), arrived, arrived, rid, 0, None, MODEL))
        yield EventBatch(requests, predictions, labels)


def prepare(url: str, folder: Path, days: int, per_day: int) -> None:
    """The history into the store and into the Parquet folder and its labels file."""
    store = SqlStore.open(url, migrate=True)
    started = time.perf_counter()
    labels: list[pd.DataFrame] = []
    for day in range(days):
        frame = day_frame(day, per_day, days)
        for batch in batches(frame):
            store.write(batch)
        export = frame.drop(columns=["truth", "labelled"])
        part = folder / "history" / f"day={day:03d}"
        part.mkdir(parents=True)
        # Sorted by time in row groups of about an hour: what lets a window skip the rest.
        pq.write_table(
            pa.Table.from_pandas(export, preserve_index=False),
            part / "part-0.parquet",
            row_group_size=max(1, per_day // 24),
        )
        if (day + 1) % 10 == 0 and day + 1 < days:
            print(f"  {day + 1} of {days} days written", flush=True)
        known = frame[frame["labelled"]]
        labels.append(
            pd.DataFrame(
                {
                    "request_id": known["request_id"],
                    "row_index": 0,
                    "label": known["truth"],
                    "time": (known["ts"] + pd.Timedelta(hours=2)).map(lambda t: t.isoformat()),
                }
            )
        )
    pd.concat(labels).to_csv(folder / "labels.csv", index=False)
    # What autovacuum does to a month of inserts over real days: the statistics, and the
    # tuples marked visible (without it the first pass over the rows sets every hint bit,
    # and autovacuum starts on the partitions while the backfill reads them).
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM (ANALYZE)")
    settings = ModelSettings.from_config(MonitorConfig.model_validate(config(url)), MODEL)
    rows = fitting.rows_from_store(store, settings, T0, T0 + DAY, None)
    fitting.save(store, settings, fitting.fit_rows(settings, rows), version="", source="bench",
                 now=T0 + DAY)  # fmt: skip
    settle(store)
    store.close()
    events, labelled = days * per_day, sum(len(part) for part in labels)
    seconds = time.perf_counter() - started
    print(f"wrote {events:,} requests and rows ({labelled:,} labels) to PostgreSQL and "
          f"the Parquet folder in {seconds:.0f} s; reference fitted from day 1")  # fmt: skip


def settle(store: SqlStore) -> None:
    """Write the load's dirty pages out now. Months-old history has long been checkpointed;
    here the load leaves a checkpoint spread over the next minutes (195 s in one run, while
    the first backfill ran), writing the load's pages while the backfill is measured."""
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        try:
            connection.exec_driver_sql("CHECKPOINT")
        except DBAPIError as error:  # a role without pg_checkpoint (PostgreSQL 15+)
            print(f"  no CHECKPOINT ({error.orig}); the load's writes may overlap the runs")


def high_water_mib(pid: int | str = "self") -> float:
    """A process's peak resident memory (VmHWM), in MiB; 0 once it has gone.

    Not ``getrusage``: Linux keeps ``ru_maxrss`` across exec, so a child started from this
    bench (or a worker started from that child) would report its parent's peak as its own.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants(pid: int | str = "self") -> set[int]:
    found: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text(encoding="ascii").split()
        except OSError:
            continue
        for child in map(int, children):
            found |= {child} | descendants(child)
    return found


class PeakWatch:
    """This process's peak memory, and the largest peak of any process it started (the
    backfill's workers), sampled every 0.2 s while they run (a high-water mark only grows)."""

    def __init__(self) -> None:
        self.children = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> PeakWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        # time.sleep, not Event.wait: under libfaketime (the suite's shifted-clock passes)
        # a timed wait on a condition never times out, and nothing would be sampled.
        while not self._stop.is_set():
            for pid in descendants():
                self.children = max(self.children, high_water_mib(pid))
            time.sleep(0.2)


def child_backfill(arguments: list[str]) -> dict[str, Any]:
    """``monitor backfill`` in this process, as a user runs it; its wall time and memory."""
    started = time.perf_counter()
    with PeakWatch() as watch:
        try:
            cli.main(arguments, prog_name="monitor", standalone_mode=False)
        except SystemExit as stop:
            if stop.code:
                raise
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss": high_water_mib(), "workers_rss": watch.children}


def child_evidently(url: str, days: int, sample: int) -> dict[str, Any]:
    """An Evidently report per window for ``sample`` windows spread over the range."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import (
        ClassificationPreset,
        DataDriftPreset,
        DataSummaryPreset,
    )

    store = SqlStore.open(url)
    columns = NUMERICAL + CATEGORICAL

    def frame(start: datetime, end: datetime) -> pd.DataFrame:
        rows = store.read_predictions(MODEL, start, end, features=columns, with_labels=True)
        rows = rows[rows["label"].notna()].copy()
        rows["prediction"] = rows["prediction"].astype(int)
        rows["label"] = rows["label"].astype(int)
        return rows[[*columns, "prediction", "label"]]

    definition = DataDefinition(
        numerical_columns=NUMERICAL,
        categorical_columns=CATEGORICAL,
        classification=[BinaryClassification(target="label", prediction_labels="prediction")],
    )
    reference = Dataset.from_pandas(frame(T0, T0 + DAY), data_definition=definition)
    total = days * 24
    picked = sorted({int(i) for i in np.linspace(0, total - 1, min(sample, total))})
    started = time.perf_counter()
    for index in picked:
        start = T0 + index * HOUR
        current = Dataset.from_pandas(frame(start, start + HOUR), data_definition=definition)
        report = Report([DataDriftPreset(), DataSummaryPreset(), ClassificationPreset()])
        report.run(current, reference).dict()  # what the example then stores per window
    seconds = time.perf_counter() - started
    store.close()
    return {"seconds": seconds, "windows": len(picked), "rss": high_water_mib()}


def in_child(part: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run one part in a fresh interpreter so its peak memory is its own."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", part, json.dumps(payload)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"{part} failed:\n{result.stdout}\n{result.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def run(url: str, days: int, per_day: int, workers: int, sample: int) -> None:
    with tempfile.TemporaryDirectory(prefix="modeltap-bench-") as scratch:
        folder = Path(scratch)
        prepare(url, folder, days, per_day)
        settings = folder / "config.yaml"
        settings.write_text(yaml.safe_dump(config(url)))
        end = T0 + days * DAY
        common = ["--config", str(settings), "backfill", "--model", MODEL,
                  "--start", T0.isoformat(), "--end", end.isoformat(),
                  "--workers", str(workers)]  # fmt: skip
        # The results of the first pass are in the store; --recompute does every window again.
        parquet = [*common, "--source", str(folder / "history"),
                   "--labels", str(folder / "labels.csv"), "--recompute"]  # fmt: skip
        measured = {
            "PostgreSQL": in_child("backfill", {"arguments": common}),
            "Parquet folder": in_child("backfill", {"arguments": parquet}),
        }
        theirs = in_child("evidently", {"url": url, "days": days, "sample": sample})
    windows = days * 24
    per_window = theirs["seconds"] / theirs["windows"]
    scaled = per_window * windows
    print(f"\n{windows} hourly windows, every detector (operations, quality, drift, "
          f"performance, ab), --workers {workers}")  # fmt: skip
    print(f"{'source':<28} {'time':>9} {'windows/s':>10} {'peak RSS':>10} {'workers':>10}")
    for name, figures in measured.items():
        print(f"{'modeltap, ' + name:<28} {figures['seconds']:>7.1f} s "
              f"{windows / figures['seconds']:>10.1f} {figures['rss']:>6.0f} MiB "
              f"{figures['workers_rss']:>6.0f} MiB")  # fmt: skip
    print(f"{'Evidently 0.7, per window':<28} {scaled:>7.1f} s {1 / per_window:>10.1f} "
          f"{theirs['rss']:>6.0f} MiB {'-':>10}")  # fmt: skip
    print(f"  (Evidently: {theirs['windows']} windows measured in {theirs['seconds']:.1f} s, "
          f"{per_window:.2f} s each, scaled to {windows}; drift, summary and classification "
          "only, one process)")  # fmt: skip
    for name, figures in measured.items():
        print(f"ratio Evidently / modeltap ({name}): {scaled / figures['seconds']:.1f}x")
    print("goal: modeltap <= 60 s for 30 days x 100,000 events/day on the 2-core machine")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("MONITOR_TEST_POSTGRES_URL"),
        help="a PostgreSQL server (a scratch database is created and dropped) "
        "[$MONITOR_TEST_POSTGRES_URL]",
    )
    parser.add_argument("--days", type=int, default=30, help="days of history")
    parser.add_argument("--per-day", type=int, default=100_000, help="requests per day")
    parser.add_argument("--workers", type=int, default=2, help="monitor backfill --workers")
    parser.add_argument("--sample", type=int, default=24, help="windows Evidently computes")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        part, payload = args.child[0], json.loads(args.child[1])
        figures = child_backfill(**payload) if part == "backfill" else child_evidently(**payload)
        print(json.dumps(figures))
        return 0
    if not args.postgres:
        parser.error("give --postgres URL (or set MONITOR_TEST_POSTGRES_URL)")
    with scratch_database(args.postgres) as url:
        print(f"PostgreSQL scratch database, {args.days} days x {args.per_day:,} requests")
        run(url, args.days, args.per_day, args.workers, args.sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
