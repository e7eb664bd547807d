"""How long a Prometheus scrape of the exporter takes, and whether that grows with uptime.

Side by side in one run: (a) a scrape of the exporter's collector (store reads plus
rendering) over ~2000 series of stored results, measured again as the results and run
tables grow window after window (simulated uptime: the clock is passed in), and (b) the
baseline, rendering a static prometheus-client registry holding the same samples, which
costs nothing but formatting. It prints the times and their ratio; the goal is a scrape of
2000 series within 50 ms, flat over uptime. Nothing here is asserted on time.

Run: .venv/bin/python bench/exporter_scrape.py [--postgres URL | --sqlite] [--windows N]
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_store_options, median_ms, store_from_options
from exporters.scrape import ResultsExporter
from exporters.source import ExportPlan
from modeltap.schema import FAMILIES, DetectorResult, DetectorRun
from modeltap.store import SqlStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = timedelta(hours=1)
INTERVAL = timedelta(minutes=5)
MODELS, VERSIONS, FEATURES = 9, 2, 20
PER_FEATURE = (("psi", 0.05), ("ks", 0.4), ("feature_drift", 0.05), ("missing_ratio", 0.01),
               ("out_of_range_share", 0.02))  # fmt: skip
PER_VERSION = (("latency_p50_ms", 12.0), ("latency_p90_ms", 30.0), ("latency_p99_ms", 80.0),
               ("error_rate", 0.01), ("throughput_rps", 40.0), ("dataset_drift", 0.1),
               ("accuracy", 0.9), ("f1", 0.8), ("label_coverage", 0.7),
               ("label_delay_s", 3600.0))  # fmt: skip


def window_results(index: int) -> list[DetectorResult]:
    """Every series' result for window ``index`` (about 2000 of them)."""
    start = T0 + index * WINDOW
    out = []
    for m in range(MODELS):
        for v in range(VERSIONS):

            def result(
                detector: str, score: float, feature: str = "", m: int = m, v: int = v
            ) -> DetectorResult:
                return DetectorResult(f"model-{m}", f"v{v}", detector, start, start + WINDOW,
                                      start + WINDOW, "ok", score + index * 1e-6, 0.2, "higher",
                                      False, feature=feature)  # fmt: skip

            out += [result(name, score) for name, score in PER_VERSION]
            out += [result(name, score, f"f{f:02d}") for f in range(FEATURES)
                    for name, score in PER_FEATURE]  # fmt: skip
    return out


def window_runs(index: int) -> list[DetectorRun]:
    start = T0 + index * WINDOW
    steps = int(WINDOW / INTERVAL)
    return [
        DetectorRun(f"model-{m}", family, start + s * INTERVAL, 40.0, "ok", start + s * INTERVAL)
        for s in range(steps) for m in range(MODELS) for family in FAMILIES
    ]  # fmt: skip


def static_registry(text: bytes) -> CollectorRegistry:
    """The baseline: the same samples as plain gauges, set once."""
    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}
    for line in text.decode().splitlines():
        if line.startswith("#") or not line:
            continue
        series, value = line.rsplit(" ", 1)
        name, _, rest = series.partition("{")
        pairs = [pair.split("=", 1) for pair in rest.rstrip("}").split('",')] if rest else []
        labels = {key: raw.strip('"') for key, raw in pairs}
        gauge = gauges.get(name)
        if gauge is None:
            gauge = gauges[name] = Gauge(name, "baseline", sorted(labels), registry=registry)
        (gauge.labels(**labels) if labels else gauge).set(float(value))
    return registry


def _at(moment: datetime) -> datetime:
    return moment


def run(url: str, windows: int, repeat: int) -> None:
    store = SqlStore.open(url, migrate=True)
    jobs = [(f"model-{m}", family) for m in range(MODELS) for family in FAMILIES]
    plan = ExportPlan(2 * WINDOW + INTERVAL, max_features=50, jobs=jobs)
    checkpoints = sorted({1, 3, 6, 12, 24, 48, 96, windows} & set(range(1, windows + 1)))
    print(f"{'uptime':>8} {'result rows':>12} {'run rows':>9} {'series':>7} "
          f"{'scrape ms':>10} {'static ms':>10} {'ratio':>6}")  # fmt: skip
    rows = runs = 0
    first: float | None = None
    for index in range(windows):
        results = window_results(index)
        store.upsert_results(results)
        for record in window_runs(index):
            store.record_run(record)
        rows += len(results)
        runs += len(window_runs(index))
        if index + 1 not in checkpoints:
            continue
        # Hours of uptime pass here in seconds, faster than PostgreSQL's autovacuum (a round
        # a minute) can follow; over real hours it has analysed the tables many times. Left
        # without statistics, PostgreSQL scans the whole results table on every scrape.
        with store.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE detector_results")
            connection.exec_driver_sql("ANALYZE detector_runs")
        now = T0 + (index + 1) * WINDOW + timedelta(minutes=1)
        registry = CollectorRegistry()
        registry.register(ResultsExporter(store, plan, partial(_at, now)))
        text = generate_latest(registry)
        series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
        baseline = static_registry(text)
        scrape = median_ms(partial(generate_latest, registry), repeat)
        static = median_ms(partial(generate_latest, baseline), repeat)
        if first is None and (index + 1) * WINDOW >= plan.lookback:
            first = scrape  # the lookback is full from here on: the scrape should stay put
        print(f"{index + 1:>7}h {rows:>12,} {runs:>9,} {series:>7,} {scrape:>10.1f} "
              f"{static:>10.1f} {scrape / static:>5.1f}x")  # fmt: skip
    store.close()
    if first is not None:
        print(f"\ngoal: a scrape of ~2000 series within 50 ms, flat over uptime; last scrape / "
              f"first with the lookback ({plan.lookback}) full: {scrape / first:.2f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_options(parser, os.environ.get("MONITOR_TEST_POSTGRES_URL"))
    parser.add_argument("--windows", type=int, default=48, help="hours of simulated uptime")
    parser.add_argument("--repeat", type=int, default=15, help="scrapes per measurement")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 windows, 3 scrapes")
    args = parser.parse_args(argv)
    windows, repeat = (3, 3) if args.quick else (args.windows, args.repeat)
    with store_from_options(args) as (database, url):
        print(f"{database}, {windows} windows of 1 h, {repeat} scrapes each")
        run(url, windows, repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
