"""`monitor demo`: a churn model's history through the store, then live through a sidecar.

The history has a planted change in its last hour (older customers, more on the "pro"
plan) and a canary version taking a tenth of the requests; the live part runs a real model
server behind a real `monitor sidecar` process and changes its callers the same way halfway.
Everything goes through the same store, schema and migrations production uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from modeltap.errors import InputError
from modeltap.schema import (
    EventBatch,
    LabelRecord,
    PredictionRecord,
    RequestRecord,
    WriteSummary,
)
from modeltap.store import SqlStore
from monitor.demo.lead import Lead
from monitor.demo.live import run_live
from monitor.demo.model import churn_probability
from monitor.demo.population import MODEL, customers
from monitor.demo.steps import Steps

_BATCH = 1000
# Whether a customer churned is known hours later: every label arrives 4 to 12 hours after
# its prediction, so a window's realized accuracy trails its estimate by hours.
LABEL_DELAY_HOURS = (4.0, 12.0)


def synthetic_traffic(
    start: datetime, end: datetime, rps: float, rng: np.random.Generator
) -> Iterator[EventBatch]:
    """Batches of requests (one to four rows each) with late labels; drift in the last hour."""
    drift_from = end - timedelta(hours=1)
    seconds = (end - start).total_seconds()
    count = int(seconds * rps)
    offsets = np.sort(rng.uniform(0, seconds, count))
    for first in range(0, count, _BATCH):
        requests: list[RequestRecord] = []
        predictions: list[PredictionRecord] = []
        labels: list[LabelRecord] = []
        for offset in offsets[first : first + _BATCH]:
            ts = start + timedelta(seconds=float(offset))
            drifted = ts >= drift_from
            version = "v2" if rng.random() < 0.1 else "v1"
            request_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
            event_id = uuid.UUID(bytes=rng.bytes(16), version=4).hex
            status = 500 if rng.random() < (0.03 if version == "v2" else 0.01) else 200
            latency = float(rng.lognormal(np.log(25 if version == "v1" else 32), 0.4))
            rows = int(rng.integers(1, 5))
            requests.append(
                RequestRecord(
                    event_id=event_id,
                    request_id=request_id,
                    model=MODEL,
                    version=version,
                    ts=ts,
                    latency_ms=latency + 0.4,
                    upstream_latency_ms=latency,
                    status_code=status,
                    request_bytes=90 * rows,
                    response_bytes=30 * rows,
                )
            )
            if status != 200:
                continue
            ages, tenures, plans = customers(rng, rows, drifted=drifted)
            for row, (age, tenure, plan) in enumerate(zip(ages, tenures, plans, strict=True)):
                # The model server's own formula: the history is what it would have answered.
                risk = churn_probability(age, tenure, plan)
                predicted = int(risk > 0.5)
                predictions.append(
                    PredictionRecord(
                        event_id=event_id,
                        row_index=row,
                        request_id=request_id,
                        model=MODEL,
                        version=version,
                        ts=ts,
                        features={"age": age, "plan": plan, "tenure_months": tenure},
                        prediction=predicted,
                        score=round(float(risk), 4),
                    )
                )
                if rng.random() < 0.7:  # ground truth for 70% of rows, hours later
                    truth = int(rng.random() < (risk if not drifted else 1 - risk))
                    arrived = ts + timedelta(hours=float(rng.uniform(*LABEL_DELAY_HOURS)))
                    labels.append(
                        LabelRecord(
                            value=truth,
                            ts=arrived,
                            received_at=arrived,
                            request_id=request_id,
                            row_index=row,
                            model=MODEL,
                        )
                    )
        yield EventBatch(requests, predictions, labels)


def summarise(store: SqlStore, start: datetime, end: datetime, step: timedelta) -> pd.DataFrame:
    """Per-window operations, data and label figures read back through the store."""
    requests = store.read_requests(
        MODEL, start, end, columns=("ts", "version", "latency_ms", "status_code")
    )
    rows = store.read_predictions(MODEL, start, end, features=["age", "plan"], with_labels=True)
    requests["window"] = requests["ts"].dt.floor(step)
    rows["window"] = rows["ts"].dt.floor(step)
    rows["correct"] = rows["label"].notna() & (rows["label"] == rows["prediction"])
    ops = requests.groupby("window").agg(
        requests=("status_code", "size"),
        p50_ms=("latency_ms", "median"),
        p99_ms=("latency_ms", lambda values: float(np.percentile(values, 99))),
        error_rate=("status_code", lambda codes: float((codes >= 500).mean())),
    )
    data = rows.groupby("window").agg(
        rows=("row_index", "size"),
        mean_age=("age", "mean"),
        pro_share=("plan", lambda plans: float((plans == "pro").mean())),
        labelled=("label", lambda values: float(values.notna().mean())),
        correct=("correct", "sum"),
    )
    summary = ops.join(data, how="left")
    labelled_rows = summary["labelled"] * summary["rows"]
    summary["accuracy"] = summary["correct"] / labelled_rows.where(labelled_rows > 0)
    return summary.drop(columns="correct")


def run_demo(
    directory: Path,
    *,
    hours: int,
    rps: float,
    seed: int,
    console: Console,
    live_seconds: float = 20.0,
    live_rps: float = 50.0,
    steps: Steps | None = None,
    now: datetime | None = None,
) -> Lead | None:
    """History through the store, then live traffic through a real sidecar, summarised.

    ``steps`` records what is done as it goes: what a Ctrl-C part-way reports. The history
    ends at ``now`` rounded down to the hour (default: the clock). Returns how far the
    estimated accuracy led the labels, when it alerted.
    """
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "demo.db"
    steps = steps or Steps(database)
    database.unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours)
    rng = np.random.default_rng(seed)

    # Closed however the demo ends: a Ctrl-C leaves no open connection behind either.
    with closing(SqlStore.open(url, migrate=True)) as store:
        console.print(
            f"[bold]modeltap demo[/]: {hours} h of history for model '{MODEL}' into {url}"
        )
        _write_history(store, start, end, rps=rps, rng=rng, console=console, steps=steps)
        from monitor.demo.detectors import run_detectors  # noqa: PLC0415 - the detectors' part

        steps.doing("the detectors")
        lead = run_detectors(store, start, end, hours, console)
        steps.done("every detector run once")
        if live_seconds > 0:
            _live(store, directory, seconds=live_seconds, rps=live_rps, seed=seed,
                  console=console, steps=steps)  # fmt: skip
        console.print(f"inspect it yourself: sqlite3 {database} 'select count(*) from predictions'")
        from monitor.demo.report import finish  # noqa: PLC0415 - the report's part

        steps.doing("writing the report")
        report, openmetrics = finish(store, start, end, hours=hours, directory=directory,
                                     console=console)  # fmt: skip
        steps.done("the report and the OpenMetrics history written")
    console.print()
    for line in steps.summary(report, openmetrics):
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    return lead


def _write_history(
    store: SqlStore,
    start: datetime,
    end: datetime,
    *,
    rps: float,
    rng: np.random.Generator,
    console: Console,
    steps: Steps,
) -> None:
    """The synthetic history through the store, a redelivery of its first batch, a table."""
    total = int((end - start).total_seconds() * rps)
    first: EventBatch | None = None
    written = WriteSummary()
    steps.doing("writing history", f"0 of {total} requests")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("writing history", total=total)
        for batch in synthetic_traffic(start, end, rps, rng):
            written += store.write(batch)
            first = first or batch
            progress.advance(task, len(batch.requests))
            steps.progress(f"{written.requests_written} of {total} requests stored")
    if first is None:
        raise InputError("no traffic generated; raise --rps or --hours")
    hours = round((end - start).total_seconds() / 3600)
    steps.done(f"{hours} h of history ({written.requests_written} requests stored)")
    console.print(
        f"stored {written.requests_written} requests, {written.predictions_written} prediction "
        f"rows, {written.labels_written} late labels"
    )
    again = store.write(EventBatch(first.requests, first.predictions))
    console.print(
        f"re-sent the first {len(first.requests)} requests (a redelivery): "
        f"{again.requests_written} written, {again.requests_duplicate} ignored as duplicates"
    )
    history = summarise(store, start, end, timedelta(minutes=30))
    console.print(
        _table(
            f"{MODEL}: history per 30 minutes (drift planted in the last hour)", history, "%H:%M"
        )
    )


def _live(
    store: SqlStore,
    directory: Path,
    *,
    seconds: float,
    rps: float,
    seed: int,
    console: Console,
    steps: Steps,
) -> None:
    """Live traffic through a real sidecar into the same database, and what it captured."""
    url = f"sqlite:///{directory / 'demo.db'}"
    live_start = datetime.now(UTC)
    steps.doing("live traffic through the sidecar", "starting the model server and sidecar")
    run = run_live(
        directory, url, seconds=seconds, rps=rps, seed=seed, console=console,
        on_sent=lambda sent, total: steps.progress(f"{sent} of {total} requests sent"),
    )  # fmt: skip
    steps.done(f"{run.sent} live requests through the sidecar")
    live_end = datetime.now(UTC) + timedelta(seconds=1)
    captured = store.read_requests(MODEL, live_start, live_end, columns=("request_id",))
    rows = store.read_predictions(MODEL, live_start, live_end, features=["age"])
    console.print(
        f"live: {run.sent} requests sent, {run.answered_ok} answered 200 by the model "
        f"through the sidecar; captured {len(captured)} requests and {len(rows)} prediction "
        f"rows ({run.spooled:.0f} spooled, {run.dropped:.0f} dropped, "
        f"{run.unparsed:.0f} unparsed); sidecar exit code {run.exit_code} after SIGTERM"
    )
    live = summarise(store, live_start, live_end, timedelta(seconds=5))
    console.print(
        _table(f"{MODEL}: live traffic per 5 seconds (callers change halfway)", live, "%H:%M:%S")
    )


def _table(title: str, summary: pd.DataFrame, time_format: str) -> Table:
    table = Table(title=title)
    for column in (
        "UTC",
        "reqs",
        "p50 ms",
        "p99 ms",
        "errors",
        "rows",
        "age",
        "pro",
        "labelled",
        "accuracy",
    ):
        table.add_column(column, justify="right", no_wrap=True)
    for window, row in summary.iterrows():
        table.add_row(
            f"{window:{time_format}}",
            f"{row['requests']:.0f}",
            f"{row['p50_ms']:.1f}",
            f"{row['p99_ms']:.1f}",
            f"{row['error_rate']:.1%}",
            f"{row['rows']:.0f}",
            f"{row['mean_age']:.1f}",
            f"{row['pro_share']:.0%}",
            f"{row['labelled']:.0%}",
            "-" if pd.isna(row["accuracy"]) else f"{row['accuracy']:.1%}",
        )
    return table
