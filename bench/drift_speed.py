"""Drift speed, side by side in one run: modeltap against Evidently 0.7 and scipy.

    .venv/bin/python bench/drift_speed.py            # the full sizes of issue #5 (minutes)
    .venv/bin/python bench/drift_speed.py --quick    # small sizes, a smoke run (seconds)
    .venv/bin/python bench/drift_speed.py --workers 1 --skip postgres   # one core, no database

It first prints the machine: CPU model, usable cores, and whether numpy's sort is vectorised
(the x86-simd-sort or Highway target numpy dispatches to, and a sort timed against numpy's
scalar stable sort), since the sort dominates and differs several-fold between CPUs. Each
section prints its goal beside its figure, and the run ends with every goal and whether this
run met it.

1. Evidently's ``DataDriftPreset`` against modeltap, the same test per run (KS, PSI,
   normalised Wasserstein) on 1M current rows x 20 numerical features against a 100k
   reference, modeltap's features on ``--workers`` threads; the scores must be equal (the
   script fails otherwise).
2. KS per feature: ``scipy.stats.ks_2samp`` against modeltap's KS on the same data, one
   feature at a time and the 20 on the pool; then the pool's kind: the same 20 on threads
   against processes (which must ship each column to a worker).
3. The drift detector (KS + PSI per feature, flags, dataset drift) over 100 features x 100k.
4. One pass of every detector over a 1-hour window of 1M events read from PostgreSQL
   (``--postgres URL``, default ``$MONITOR_TEST_POSTGRES_URL``), with peak memory, plus the
   COPY read path against SQLAlchemy's.

It prints times and ratios; it never judges them. Timings are the best of ``--repeat``
runs (each side the same number of times), on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently: no telemetry from a benchmark

from bench import pgpass
from detectors.emit import Scope
from detectors.evaluate import evaluate
from detectors.pool import Pool, available_cores
from detectors.profile import ProfileSettings, fit_profile
from detectors.rows import Rows
from detectors.settings import ModelSettings
from detectors.stats.ks import ks_2samp_sorted, kstwo_sf
from detectors.stats.reference import NumericalReference, fit_numerical
from detectors.stats.registry import NumericalInput, Options, default_registry
from detectors.stats.samples import FloatArray, NumericalSample
from detectors.windows import Window

T = TypeVar("T")
REGISTRY = default_registry()
# The goals of issue #17, on a 2-core machine, in one run beside the baselines.
GOAL_EVIDENTLY = 25.0  # modeltap at least this many times faster, all three tests
GOAL_KS = 0.3  # modeltap's time at most this share of scipy's
GOAL_PASS_S = 6.0  # every detector over the 1M-event hour
GOAL_PASS_MB = 500.0  # peak resident memory of that pass
# Evidently's display name of each test, as its reports spell it.
EVIDENTLY = {"ks": "K-S p_value", "psi": "PSI", "wasserstein": "Wasserstein distance (normed)"}


@dataclass(frozen=True)
class Sizes:
    current: int
    reference: int
    features: int
    wide_features: int
    wide_rows: int
    events: int


FULL = Sizes(1_000_000, 100_000, 20, 100, 100_000, 1_000_000)
QUICK = Sizes(20_000, 5_000, 3, 10, 5_000, 20_000)


def best(repeat: int, work: Callable[[], T]) -> tuple[float, T]:
    """The fastest of ``repeat`` runs, and the last result."""
    times = []
    result: Any = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def frames(sizes: Sizes, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current tables; half the features drift a little."""
    rng = np.random.default_rng(seed)
    names = [f"f{i:02d}" for i in range(sizes.features)]
    reference = pd.DataFrame(rng.normal(size=(sizes.reference, sizes.features)), columns=names)
    shifts = np.where(np.arange(sizes.features) % 2 == 0, 0.0, 0.05)
    scales = rng.uniform(0.5, 20, size=sizes.features)
    current = pd.DataFrame(
        rng.normal(shifts, 1.0, size=(sizes.current, sizes.features)), columns=names
    )
    return reference * scales, current * scales


def evidently_run(reference: pd.DataFrame, current: pd.DataFrame, method: str) -> dict[str, float]:
    """Evidently's DataDriftPreset with one test for every numerical column; score by column."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(reference.columns))
    snapshot = Report([DataDriftPreset(num_method=method)]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    scores = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            if config["method"] not in (method, EVIDENTLY[method]):
                raise RuntimeError(f"Evidently ran {config['method']}, not {method}")
            scores[config["column"]] = float(metric["value"])
    return scores


def ours_run(
    references: dict[str, NumericalReference], current: pd.DataFrame, method: str, pool: Pool
) -> dict[str, float]:
    """modeltap's test on every column, one column per task: the window sorted once in it."""
    test = REGISTRY.get(method)
    options = Options(psi_mode="evidently")  # Evidently's bins, for equal numbers

    def score(name: str) -> float:
        sample = NumericalSample(current[name].to_numpy())
        result = test.run(NumericalInput(references[name], sample), options=options)
        assert result.score is not None
        return result.score

    names = list(references)
    return dict(zip(names, pool.map(score, names), strict=True))


@dataclass
class Goal:
    """One goal of the run, its figure and whether the figure meets it."""

    measure: str
    goal: str
    figure: str
    met: bool


def machine(workers: int) -> None:
    """What decides the figures: the CPU, the cores, and numpy's sort."""
    print(f"   CPU: {cpu_model()} ({platform.machine()}), {available_cores()} usable cores")
    print(f"   modeltap pool: {workers} feature thread(s) (--workers)")
    print(f"   numpy {np.__version__}: {sort_dispatch()}")
    values = np.random.default_rng(9).normal(size=1_000_000)
    quick, _ = best(5, lambda: np.sort(values))
    stable, _ = best(5, lambda: np.sort(values, kind="stable"))
    # A vectorised quicksort beats the scalar stable sort several-fold; near 1x, it is not
    # running vectorised here (or the machine is too busy to tell).
    verdict = "vectorised" if stable / quick >= 2 else "NOT vectorised in effect"
    print(
        f"   np.sort of 1M float64: {quick * 1000:.1f} ms, numpy's scalar stable sort "
        f"{stable * 1000:.1f} ms: {stable / quick:.1f}x, {verdict}"
    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith(("model name", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def sort_dispatch() -> str:
    """Whether numpy's float64 sort runs on vector instructions on this CPU, and which.

    numpy 2 sorts 32- and 64-bit numbers with x86-simd-sort on AVX-512 (Skylake-X level)
    or AVX2, and with Highway's vqsort on ARM (ASIMD/SVE); otherwise its scalar introsort.
    """
    features: dict[str, bool] = importlib.import_module(
        "numpy._core._multiarray_umath"
    ).__cpu_features__
    found = [name for name in ("AVX512_SKX", "AVX2", "SVE", "ASIMD") if features.get(name)]
    if int(np.__version__.split(".")[0]) < 2 or not found:
        return "sort dispatch: scalar introsort only"
    library = "x86-simd-sort" if found[0].startswith("AVX") else "Highway vqsort"
    return f"sort dispatch: {library} on {found[0]} (CPU has {', '.join(found)})"


def section_evidently(sizes: Sizes, repeat: int, pool: Pool, goals: list[Goal]) -> bool:
    print(
        f"\n1. DataDriftPreset: {sizes.current:,} current x {sizes.features} numerical features "
        f"against {sizes.reference:,} reference rows"
    )
    reference, current = frames(sizes)
    fit_time, references = best(
        1,
        lambda: {
            name: fit_numerical(
                reference[name].to_numpy(), violations=0, bins=10, sample_size=sizes.reference
            )
            for name in reference.columns
        },
    )
    print(f"   modeltap fits the reference once (kept for every window): {fit_time:.2f} s")
    # Warm both up (imports, caches) on a small slice before anything is timed.
    evidently_run(reference.head(2000), current.head(2000), "ks")
    ours_run(references, current.head(2000), "ks", pool)
    equal = True
    total_theirs = total_ours = 0.0
    for method in ("ks", "psi", "wasserstein"):
        theirs_time, theirs = best(repeat, partial(evidently_run, reference, current, method))
        ours_time, ours = best(repeat, partial(ours_run, references, current, method, pool))
        # Absolute for p-values and small distances, relative for large ones.
        worst = max(abs(ours[name] - theirs[name]) / max(1.0, abs(theirs[name])) for name in theirs)
        same = set(ours) == set(theirs) and worst <= 1e-9
        equal &= same
        total_theirs += theirs_time
        total_ours += ours_time
        print(
            f"   {method:12s} Evidently {theirs_time:8.2f} s   modeltap {ours_time:6.3f} s   "
            f"{theirs_time / ours_time:6.1f}x faster   largest difference {worst:.1e}"
            f"{'' if same else '  NOT EQUAL'}"
        )
    ratio = total_theirs / total_ours
    print(
        f"   all three    Evidently {total_theirs:8.2f} s   modeltap {total_ours:6.3f} s   "
        f"{ratio:6.1f}x faster (goal >= {GOAL_EVIDENTLY:.0f}x)   "
        f"equal results: {'yes' if equal else 'NO'}"
    )
    goals.append(
        Goal(
            "drift, all three tests vs Evidently",
            f">= {GOAL_EVIDENTLY:.0f}x",
            f"{ratio:.1f}x",
            ratio >= GOAL_EVIDENTLY,
        )
    )
    return equal


def _ks_column(reference_sorted: FloatArray, column: FloatArray) -> tuple[float, float]:
    result = ks_2samp_sorted(reference_sorted, np.sort(column))
    return result.statistic, result.pvalue


def section_ks(sizes: Sizes, repeat: int, pool: Pool, workers: int, goals: list[Goal]) -> bool:
    from scipy import stats

    print(
        f"\n2. KS per feature: scipy.stats.ks_2samp against modeltap, {sizes.current:,} x "
        f"{sizes.reference:,}, {sizes.features} features"
    )
    reference, current = frames(sizes, seed=1)
    presorted = {name: np.sort(reference[name].to_numpy()) for name in reference.columns}
    columns = {name: current[name].to_numpy() for name in current.columns}
    names = list(columns)

    def scipy_all() -> list[tuple[float, float]]:
        return [
            (float(r.statistic), float(r.pvalue))
            for r in (stats.ks_2samp(reference[n].to_numpy(), columns[n]) for n in columns)
        ]

    def ours_all() -> list[tuple[float, float]]:
        return [_ks_column(presorted[n], columns[n]) for n in names]

    def ours_pooled() -> list[tuple[float, float]]:
        return pool.map(lambda n: _ks_column(presorted[n], columns[n]), names)

    theirs_time, theirs = best(repeat, scipy_all)
    ours_time, ours = best(repeat, ours_all)
    pooled_time, pooled = best(repeat, ours_pooled)
    worst = max(max(abs(a[0] - b[0]), abs(a[1] - b[1])) for a, b in zip(ours, theirs, strict=True))
    equal = worst <= 1e-9 and pooled == ours
    # The p-value alone, kstwo.sf(D, round(m n / (m + n))) on the same statistics: scipy's
    # and modeltap's (vectorised for drifted windows), to show where each side's time goes.
    effective = round(sizes.current * sizes.reference / (sizes.current + sizes.reference))
    theirs_p, _ = best(repeat, lambda: [stats.kstwo.sf(d, effective) for d, _ in ours])
    ours_p, _ = best(repeat, lambda: [kstwo_sf(d, effective) for d, _ in ours])
    count = len(columns)

    def per_feature(seconds: float) -> str:
        return f"{seconds / count * 1000:.1f}"

    serial_ratio, pooled_ratio = ours_time / theirs_time, pooled_time / theirs_time
    print(
        f"   scipy {per_feature(theirs_time)} ms/feature   modeltap {per_feature(ours_time)} "
        f"ms/feature (window sort included)   ratio {serial_ratio:.2f} (goal <= {GOAL_KS})   "
        f"largest difference {worst:.1e}{'' if equal else '  NOT EQUAL'}"
    )
    print(
        f"   the {count} features: scipy {theirs_time:.2f} s, modeltap on {workers} thread(s) "
        f"{pooled_time:.2f} s   ratio {pooled_ratio:.2f} (goal <= {GOAL_KS})   "
        f"same results as one at a time: {'yes' if pooled == ours else 'NO'}"
    )
    print(
        f"   the p-value alone: scipy {per_feature(theirs_p)}, modeltap {per_feature(ours_p)} "
        f"ms/feature (ratio {ours_p / theirs_p:.2f}); the statistic, sorts included: scipy "
        f"{per_feature(theirs_time - theirs_p)}, modeltap {per_feature(ours_time - ours_p)} "
        f"ms/feature (ratio {(ours_time - ours_p) / (theirs_time - theirs_p):.2f})"
    )
    best_ratio = min(serial_ratio, pooled_ratio)
    goals.append(
        Goal(
            "KS vs scipy (per feature, or the features on the pool)",
            f"<= {GOAL_KS}x",
            f"{serial_ratio:.2f}x / {pooled_ratio:.2f}x pooled",
            best_ratio <= GOAL_KS,
        )
    )
    if workers > 1:
        section_pool_kind(
            presorted,
            columns,
            workers=workers,
            repeat=repeat,
            threads_time=pooled_time,
            threads_result=pooled,
        )
    return equal


def section_pool_kind(
    presorted: dict[str, FloatArray],
    columns: dict[str, FloatArray],
    *,
    workers: int,
    repeat: int,
    threads_time: float,
    threads_result: list[tuple[float, float]],
) -> None:
    """The same features on processes: each column pickled to a worker, its answer back."""
    names = list(columns)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as processes:
        list(processes.map(_ks_column, [presorted[names[0]]], [columns[names[0]]]))  # start-up
        took, result = best(
            repeat,
            lambda: list(
                processes.map(
                    _ks_column, [presorted[n] for n in names], [columns[n] for n in names]
                )
            ),
        )
    winner = "threads" if threads_time <= took else "processes"
    print(
        f"   pool kind, the same {len(names)} features on {workers} workers: threads "
        f"{threads_time:.2f} s, processes {took:.2f} s -> {winner} win"
        f"{'' if result == threads_result else '  (processes gave OTHER RESULTS)'}"
    )


def section_wide(sizes: Sizes, repeat: int, workers: int) -> None:
    print(
        f"\n3. The drift detector: {sizes.wide_features} features x {sizes.wide_rows:,} rows "
        "(KS and PSI per feature, PSI flags, dataset drift)"
    )
    rng = np.random.default_rng(2)
    names = [f"x{i:03d}" for i in range(sizes.wide_features)]
    kinds: dict[str, Any] = dict.fromkeys(names, "numerical")
    reference = Rows(
        pd.DataFrame(rng.normal(size=(sizes.wide_rows, len(names))), columns=names), kinds
    )
    current = Rows(
        pd.DataFrame(rng.normal(0.02, 1, size=(sizes.wide_rows, len(names))), columns=names), kinds
    )
    fit_time, profile = best(1, lambda: fit_profile(reference, settings=ProfileSettings()))
    now = pd.Timestamp("2026-11-25T13:00Z").to_pydatetime()
    scope = Scope("wide", "", Window(now, now), now)
    timings = []
    for threads in sorted({1, workers}):
        settings = ModelSettings(model="wide", task="regression", kinds=kinds, workers=threads)
        took, results = best(
            repeat,
            partial(
                evaluate,
                settings,
                scope,
                detectors=["drift"],
                rows={"v1": current},
                profiles={"v1": profile},
            ),
        )
        timings.append(f"{took:.2f} s on {threads} thread(s)")
    print(
        f"   fit (once) {fit_time:.2f} s; one pass {', '.join(timings)} (goal <= 2 s), "
        f"{len(results)} results"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side; the best counts")
    parser.add_argument(
        "--workers",
        type=int,
        default=available_cores(),
        help="modeltap's feature threads (detectors.feature_workers; default: this machine's "
        "usable cores)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("MONITOR_TEST_POSTGRES_URL"),
        help="a PostgreSQL server (a scratch database is created and dropped)",
    )
    parser.add_argument("--events", type=int, help="events in section 4's window (default by size)")
    parser.add_argument(
        "--skip", action="append", default=[], choices=["evidently", "ks", "wide", "postgres"]
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    workers = max(args.workers, 1)
    print(
        f"drift_speed ({'quick' if args.quick else 'full'} sizes, best of {args.repeat}, "
        f"{os.cpu_count()} CPUs)"
    )
    machine(workers)
    equal = True
    goals: list[Goal] = []
    with Pool.threads(workers) as pool:
        if "evidently" not in args.skip:
            equal &= section_evidently(sizes, args.repeat, pool, goals)
        if "ks" not in args.skip:
            equal &= section_ks(sizes, max(args.repeat, 3), pool, workers, goals)
    if "wide" not in args.skip:
        section_wide(sizes, max(args.repeat, 3), workers)
    if "postgres" not in args.skip:
        if not args.postgres:
            print("\n4. skipped: give --postgres URL or set MONITOR_TEST_POSTGRES_URL")
        else:
            seconds, peak = pgpass.section(args.postgres, args.events or sizes.events, workers)
            goals.append(
                Goal(
                    "every detector, 1M-event hour from PostgreSQL",
                    f"<= {GOAL_PASS_S:.0f} s, <= {GOAL_PASS_MB:.0f} MB",
                    f"{seconds:.1f} s, {peak:.0f} MB",
                    seconds <= GOAL_PASS_S and peak <= GOAL_PASS_MB,
                )
            )
    print(f"\nGoals ({'quick sizes: not the goals own sizes' if args.quick else 'full sizes'}):")
    for goal in goals:
        print(
            f"   {goal.measure:52s} goal {goal.goal:18s} this run {goal.figure:24s} "
            f"{'met' if goal.met else 'NOT MET'}"
        )
    if not equal:
        print("\nFAILED: modeltap's numbers differ from the baseline's", file=sys.stderr)
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
