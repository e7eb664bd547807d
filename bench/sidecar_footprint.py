"""The sidecar's footprint, side by side with the commit before it was slimmed, in one run.

The sidecar runs in every model pod, so what it costs is multiplied by the fleet. Measured
for today's tree and for the baseline commit (``--baseline``, default the last commit before
the slimming; exported with ``git archive`` into a scratch directory and run from the same
virtualenv, the same way: ``python -c 'from monitor.cli import main; main()' … sidecar``):

1. process start to the first ``200`` from ``/readyz`` (median of ``--starts`` starts);
2. resident memory (VmRSS) one second after ``/readyz``, before the first request;
3. the highest resident memory while callers send 200 requests/s for ``--seconds`` to the
   KServe predict route of the real model server (tests/collector/model_server.py), every
   request captured into the sink;
4. which of numpy, pandas and scipy the process has mapped (``/proc/PID/maps``);
5. ``monitor --help``, wall time.

Each runs for the embedded SQLite sink and, when a broker is given (``--kafka``, default
``$MONITOR_TEST_KAFKA``), the Kafka sink. The load is an open-loop generator in this process
(aiohttp; requests go out on schedule whether or not earlier ones are answered). Goals
(issue 14): start to ready <= 0.5 s, idle RSS <= 60 MiB, RSS at 200 rps <= 80 MiB. Figures
are printed, never asserted. Run: .venv/bin/python bench/sidecar_footprint.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sidecar_overhead import BODY, IRIS, free_port, process, rss_mib

ROOT = Path(__file__).resolve().parents[1]
# The last commit before issue 14 made the capture path import only what it uses.
BASELINE = "e2d90ef"
LAUNCH = "from monitor.cli import main; main()"
HEAVY = ("numpy", "pandas", "scipy")
GOALS = {"ready_s": 0.5, "idle_mib": 60.0, "load_mib": 80.0}


@dataclass
class Figures:
    ready_s: float
    idle_mib: float
    load_mib: float
    answered: float
    heavy: list[str]


def export_tree(revision: str, into: Path) -> Path:
    """The files of ``revision``, without touching the checkout (no worktree, no checkout)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(f"cannot export {revision}: {archive.stderr.decode().strip()}")
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def write_config(directory: Path, upstream: int, sink: str) -> tuple[Path, int, int]:
    port, metrics = free_port(), free_port()
    config = {
        "sink": {"url": sink},
        "models": [
            {
                "name": "iris",
                "task": "classification",
                "features": [{"name": name, "type": "numerical"} for name in IRIS],
            }
        ],
        "sidecar": {
            "upstream": f"http://127.0.0.1:{upstream}",
            "listen": f"127.0.0.1:{port}",
            "metrics_listen": f"127.0.0.1:{metrics}",
            "spool_dir": str(directory / "spool"),
        },
    }
    path = directory / "sidecar.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, port, metrics


@contextmanager
def started(tree: Path, config: Path, metrics: int, log: Path) -> Iterator[tuple[int, float]]:
    """Start the sidecar of ``tree``; yield (pid, seconds from start to a ready /readyz)."""
    env = os.environ | {"PYTHONPATH": str(tree)}
    command = [sys.executable, "-c", LAUNCH, "--config", str(config), "sidecar"]
    with log.open("ab") as output:
        begun = time.perf_counter()
        running = subprocess.Popen(command, cwd=tree, env=env, stdout=output, stderr=output)
    try:
        deadline = begun + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/readyz", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                if running.poll() is not None or time.perf_counter() > deadline:
                    raise SystemExit(f"the sidecar never got ready; see {log}") from None
                time.sleep(0.005)
        yield running.pid, time.perf_counter() - begun
    finally:
        running.terminate()
        running.wait(30)


def mapped_heavy(pid: int) -> list[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return [name for name in HEAVY if f"/{name}/" in maps or f"/{name}.libs/" in maps]


async def load(port: int, pid: int, rate: int, seconds: float) -> tuple[float, float]:
    """Open-loop load on the predict route; (highest RSS in MiB, share answered 200)."""
    url = f"http://127.0.0.1:{port}/v1/models/iris:predict"
    headers = {"Content-Type": "application/json"}
    highest = rss_mib(pid)
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal highest
        while not done.is_set():
            highest = max(highest, rss_mib(pid))
            await asyncio.sleep(0.2)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def call() -> bool:
            try:
                async with session.post(url, data=BODY, headers=headers) as response:
                    await response.read()
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        sampler = asyncio.create_task(sample())
        calls = []
        begun = time.perf_counter()
        for index in range(int(rate * seconds)):
            delay = begun + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            calls.append(asyncio.create_task(call()))
        answers = await asyncio.gather(*calls)
        await asyncio.sleep(0.5)  # the last batch reaches the sink
        done.set()
        await sampler
    highest = max(highest, rss_mib(pid))
    return highest, sum(answers) / max(len(answers), 1)


def measure(
    tree: Path, work: Path, model_port: int, sink: str, options: argparse.Namespace
) -> Figures:
    config, port, metrics = write_config(work, model_port, sink)
    log = work / "sidecar.log"
    readies, idles = [], []
    for attempt in range(options.starts):
        with started(tree, config, metrics, log) as (pid, ready):
            readies.append(ready)
            time.sleep(1.0)
            idles.append(rss_mib(pid))
            if attempt == options.starts - 1:
                load_mib, answered = asyncio.run(load(port, pid, 200, options.seconds))
                heavy = mapped_heavy(pid)
    return Figures(statistics.median(readies), statistics.median(idles), load_mib, answered, heavy)


def help_seconds(tree: Path, repeat: int) -> float:
    env = os.environ | {"PYTHONPATH": str(tree)}
    times = []
    for _ in range(repeat):
        begun = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", LAUNCH, "--help"], cwd=tree, env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        times.append(time.perf_counter() - begun)
    return statistics.median(times)


def report(sink: str, before: Figures, after: Figures) -> None:
    rows = [
        ("start to /readyz", before.ready_s, after.ready_s, "s", GOALS["ready_s"]),
        ("idle RSS", before.idle_mib, after.idle_mib, "MiB", GOALS["idle_mib"]),
        ("RSS at 200 rps", before.load_mib, after.load_mib, "MiB", GOALS["load_mib"]),
    ]
    for name, old, new, unit, goal in rows:
        met = "met" if new <= goal else "NOT met"
        print(
            f"{sink:<7} {name:<18} {old:>8.2f} {unit:<3} {new:>8.2f} {unit:<3} "
            f"{new / old:>6.2f}x   goal <= {goal:g} {unit}: {met}"
        )
    print(f"{sink:<7} {'answered 200':<18} {before.answered:>8.1%}     {after.answered:>8.1%}")
    print(
        f"{sink:<7} {'heavy libs mapped':<18} {','.join(before.heavy) or '-':>12} "
        f"{','.join(after.heavy) or '-':>12}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer starts, 3 s of load")
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    parser.add_argument("--kafka", default=os.environ.get("MONITOR_TEST_KAFKA"), help="host:port")
    parser.add_argument("--starts", type=int, help="starts per variant (default 5, quick 2)")
    parser.add_argument("--seconds", type=float, help="seconds of load (default 20, quick 3)")
    options = parser.parse_args()
    options.starts = options.starts or (2 if options.quick else 5)
    options.seconds = options.seconds or (3.0 if options.quick else 20.0)

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        baseline = export_tree(options.baseline, work / "baseline")
        trees = {"before": baseline, "after": ROOT}
        model_port = free_port()
        model = [sys.executable, "-m", "tests.collector.model_server", "--port", str(model_port)]
        with process(model, model_port, work / "model.log"):
            topic = f"bench.footprint.{uuid.uuid4().hex[:8]}"
            sinks = ["sqlite", "kafka"] if options.kafka else ["sqlite"]
            print(f"baseline: {options.baseline} (git archive), after: the working tree")
            print(f"{'sink':<7} {'figure':<18} {'before':>12} {'after':>12} {'ratio':>7}")
            for sink in sinks:
                figures = {}
                for variant, tree in trees.items():
                    directory = work / f"{sink}-{variant}"
                    directory.mkdir()
                    url = (
                        f"kafka://{options.kafka}/{topic}"
                        if sink == "kafka"
                        else f"sqlite:///{directory / 'capture.db'}"
                    )
                    figures[variant] = measure(tree, directory, model_port, url, options)
                report(sink, figures["before"], figures["after"])
        repeat = 2 if options.quick else 5
        before_help, after_help = help_seconds(baseline, repeat), help_seconds(ROOT, repeat)
        print(
            f"{'-':<7} {'monitor --help':<18} {before_help:>8.2f} s   {after_help:>8.2f} s   "
            f"{after_help / before_help:>6.2f}x"
        )


if __name__ == "__main__":
    main()
