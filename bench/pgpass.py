"""Section 4 of drift_speed: one detector pass over a 1-hour window read from PostgreSQL.

A scratch database gets ``events`` requests (one prediction row each, 10 features, two
versions, labels for 60% of rows) in the hour 12:00-13:00, and a tenth as many the hour
before, which is fitted as the reference. Then, in a fresh process so its peak memory is
its own, every detector job runs once for the window, as ``monitor detect`` would.
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import make_url

from bench.common import scratch_database
from detectors import fitting
from detectors.runner import Runner
from detectors.settings import ModelSettings
from modeltap.config import MonitorConfig
from modeltap.schema import EventBatch, LabelRecord, PredictionRecord, RequestRecord
from modeltap.store import SqlStore
from modeltap.store.queries import detectors as q
from modeltap.store.queries import json_rows

MODEL = "bench"
HOUR = timedelta(hours=1)
START = datetime(2026, 11, 25, 12, tzinfo=UTC)
NUMERICAL = [f"n{i}" for i in range(8)]
CATEGORICAL = ["plan", "region"]
BATCH = 20_000


def config(url: str, workers: int | None = None) -> MonitorConfig:
    return MonitorConfig.model_validate(
        {
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
            "detectors": {"window": "1h", "label_horizon": "1h", "feature_workers": workers},
        }
    )


def batches(start: datetime, count: int, seed: int) -> list[EventBatch]:
    """``count`` requests spread over the hour from ``start``, built with numpy in chunks."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, 3600, count))
    out = []
    for first in range(0, count, BATCH):
        part = offsets[first : first + BATCH]
        size = part.size
        numbers = rng.normal(50, 10, size=(size, len(NUMERICAL))).round(3)
        plans = rng.choice(["basic", "pro", "enterprise"], p=[0.6, 0.3, 0.1], size=size)
        regions = rng.choice([f"r{i}" for i in range(20)], size=size)
        versions = np.where(rng.uniform(size=size) < 0.9, "v1", "v2")
        latency = rng.lognormal(3.2, 0.4, size=size)
        failed = rng.uniform(size=size) < 0.01
        truth = rng.integers(0, 2, size=size)
        predicted = np.where(rng.uniform(size=size) < 0.85, truth, 1 - truth)
        labelled = rng.uniform(size=size) < 0.6
        requests, predictions, labels = [], [], []
        for i in range(size):
            ts = start + timedelta(seconds=float(part[i]))
            event = f"{seed}-{first + i}"
            version = str(versions[i])
            requests.append(
                RequestRecord(
                    event, event, MODEL, version, ts, float(latency[i]), 500 if failed[i] else 200
                )
            )
            features: dict[str, Any] = dict(zip(NUMERICAL, numbers[i].tolist(), strict=True))
            features["plan"], features["region"] = str(plans[i]), str(regions[i])
            predictions.append(
                PredictionRecord(
                    event,
                    0,
                    event,
                    MODEL,
                    version,
                    ts,
                    features,
                    int(predicted[i]),
                    0.8 if predicted[i] else 0.2,
                )
            )
            if labelled[i]:
                arrived = ts + timedelta(hours=2)
                labels.append(LabelRecord(int(truth[i]), arrived, arrived, event, 0, None, MODEL))
        out.append(EventBatch(requests, predictions, labels))
    return out


def section(url: str, events: int, workers: int | None = None) -> tuple[float, float]:
    """Seconds and peak resident MB of the shared pass (``monitor detect --once``)."""
    print(f"\n4. One detector pass over a 1-hour window of {events:,} events read from PostgreSQL")
    with scratch_database(url) as database:
        return _run(database, events, workers)


def _run(url: str, events: int, workers: int | None) -> tuple[float, float]:
    store = SqlStore.open(url, migrate=True)
    settings = ModelSettings.from_config(config(url), MODEL)
    started = time.perf_counter()
    for batch in batches(START - HOUR, events // 10, seed=1) + batches(START, events, seed=2):
        store.write(batch)
    written = time.perf_counter() - started
    print(
        f"   wrote {events * 11 // 10:,} requests and rows with labels in {written:.1f} s "
        f"({events * 11 / 10 / written:,.0f} events/s, COPY)"
    )
    rows = fitting.rows_from_store(store, settings, START - HOUR, START, None)
    fitting.save(
        store, settings, fitting.fit_rows(settings, rows), version="", source="bench", now=START
    )
    # What autovacuum does over real hours. In a transaction that commits: an ANALYZE rolled
    # back with its connection leaves no statistics, and the planner then joins the labels
    # with a million index lookups instead of one hash.
    with store.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    kinds = settings.kinds
    numerical = [n for n, k in kinds.items() if k == "numerical"]
    categorical = [n for n, k in kinds.items() if k == "categorical"]
    copy_time, frame = _timed(
        lambda: store.read_rows(
            MODEL,
            START,
            START + HOUR,
            numerical=numerical,
            categorical=categorical,
            with_labels=True,
        )
    )
    orm_time, orm = _timed(
        lambda: store.read_predictions(
            MODEL, START, START + HOUR, features=[*numerical, *categorical], with_labels=True
        )
    )
    print(
        f"   reading the window's {len(frame):,} rows, 10 features and labels: "
        f"COPY {copy_time:.2f} s, SQLAlchemy rows {orm_time:.2f} s ({orm_time / copy_time:.1f}x)"
    )
    del orm
    query = q.RowQuery(MODEL, START, START + HOUR, numerical, categorical, with_labels=True)
    with store.engine.connect() as connection:
        json_time, lines = _timed(lambda: json_rows.json_frame(connection, query))
        sql_time, projected = _timed(
            lambda: q.copy_frame(
                connection, q.postgres_rows_query(query), query.names, query.dtypes
            )
        )
    if lines is None or not _same_rows(lines, projected):
        raise RuntimeError("the JSON-lines read and the SQL projection read different rows")
    print(
        f"   the same read from the packed numbers {json_time:.2f} s, features "
        f"projected in SQL {sql_time:.2f} s ({sql_time / json_time:.1f}x); the frames are equal"
    )
    del frame, lines, projected
    store.close()
    measured = (0.0, 0.0)
    for shared in (True, False):
        report = _in_child(url, shared, workers)
        if shared:
            measured = (report["seconds"], report["peak_mb"])
        per_job = ", ".join(f"{job} {seconds:.1f} s" for job, seconds in report["jobs"])
        how = (
            "as `monitor detect --once` (reads shared)"
            if shared
            else "as the daemon's jobs (each reads its own)"
        )
        print(
            f"   one pass of every detector {how}: {report['seconds']:.1f} s "
            f"({per_job}); {report['results']:,} results" + (" (goal <= 6 s)" if shared else "")
        )
        print(
            f"      peak memory (resident) {report['peak_mb']:.0f} MB: {report['base_mb']:.0f} MB "
            f"after start-up, {report['peak_mb'] - report['base_mb']:.0f} MB more at the peak"
            + (" (goal <= 500 MB)" if shared else "")
        )
        with psycopg.connect(_libpq(url), autocommit=True) as connection:
            for table in ("detector_results", "detector_windows", "detector_runs"):
                connection.execute(f"DELETE FROM {table}")
    return measured


def _in_child(url: str, shared: bool, workers: int | None) -> dict[str, Any]:
    """The pass in a fresh process, so the memory it reports is the pass's own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_pass, args=(url, shared, workers, queue))
    child.start()
    report: dict[str, Any] = queue.get(timeout=3600)
    child.join()
    return report


def _same_rows(one: pd.DataFrame, two: pd.DataFrame) -> bool:
    """Equal frames, doubles compared bit for bit (NaN equal to NaN)."""
    one, two = (
        frame.sort_values(["ts", "feature:n0"]).reset_index(drop=True) for frame in (one, two)
    )
    if list(one.columns) != list(two.columns) or not (one.dtypes == two.dtypes).all():
        return False
    for column in one.columns:
        if one[column].dtype == "float64":
            if one[column].to_numpy().tobytes() != two[column].to_numpy().tobytes():
                return False
        elif not one[column].astype(object).equals(two[column].astype(object)):
            return False
    return True


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _timed(work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def _status(field: str) -> float:
    """A size from /proc/self/status, in MB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _pass(url: str, shared: bool, workers: int | None, queue: Any) -> None:
    store = SqlStore.open(url)
    settings = ModelSettings.from_config(config(url, workers), MODEL)
    runner = Runner(store, [settings], owner="bench")
    # ru_maxrss would carry the parent's peak across fork+exec; VmHWM is this process's own,
    # and writing 5 to clear_refs resets it, so the peak measured is the pass's.
    base = _status("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")
    started = time.perf_counter()
    jobs = []
    results = 0
    if shared:
        outcomes = runner.run_all(START + HOUR)
    else:
        outcomes = [runner.run(model, detector, START + HOUR) for model, detector in runner.jobs()]
    for outcome in outcomes:
        if outcome.status != "ok":
            raise RuntimeError(f"{outcome.detector} failed: {outcome.error}")
        jobs.append((outcome.detector, outcome.duration_ms / 1000))
        results += len(outcome.results)
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    store.close()
    queue.put(
        {"seconds": seconds, "jobs": jobs, "results": results, "base_mb": base, "peak_mb": peak}
    )
