"""What the sidecar costs the model's callers, measured side by side in one run.

The same real model server (tests/collector/model_server.py: scikit-learn behind uvicorn,
like KServe's Python server) is called directly and through `monitor sidecar`:

1. added p50/p99 latency at a fixed 200 requests/s (vegeta, open loop), on the KServe
   predict route with full capture into SQLite;
2. maximum throughput (wrk, 32 connections) through the sidecar as a share of direct, on a
   trivial route and on a route that takes 10 ms;
3. the sidecar's resident memory while its sink is stalled (a database that accepts
   connections and never answers) for 60 s at 200 requests/s.

Goals (issue #3): p50 +0.5 ms, p99 +2 ms; throughput >= 0.6x (trivial) and >= 0.95x
(10 ms); RSS growth <= 30 MiB. Needs `make tools` (wrk, vegeta). Ratios are printed, never
asserted. Run: .venv/bin/python bench/sidecar_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STATE_BIN = ROOT / ".state" / "bin"
BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})
IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {seconds}s")


@contextmanager
def process(command: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        running = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_port(port)
        yield running
    finally:
        running.terminate()
        running.wait(30)


@contextmanager
def black_hole() -> Iterator[int]:
    """A 'database' that accepts connections and never says a word: a stalled sink."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


def sidecar(directory: Path, upstream: int, sink: str) -> tuple[list[str], int]:
    port, metrics = free_port(), free_port()
    config = {
        "sink": {"url": sink},
        "models": [
            {
                "name": "iris",
                "task": "classification",
                "features": [{"name": n, "type": "numerical"} for n in IRIS],
            }
        ],
        "sidecar": {
            "upstream": f"http://127.0.0.1:{upstream}",
            "listen": f"127.0.0.1:{port}",
            "metrics_listen": f"127.0.0.1:{metrics}",
            "spool_dir": str(directory / "spool"),
            "spool_max_bytes": "2GiB",
        },
    }
    path = directory / "sidecar.yaml"
    path.write_text(yaml.safe_dump(config))
    return [str(BIN / "monitor"), "--config", str(path), "sidecar"], port


def vegeta(port: int, seconds: float, rate: int = 200) -> dict[str, float]:
    targets = (
        f"POST http://127.0.0.1:{port}/v1/models/iris:predict\n"
        "Content-Type: application/json\n@body.json\n"
    )
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "body.json").write_text(BODY)
        attack = subprocess.run(
            [
                str(STATE_BIN / "vegeta"),
                "attack",
                f"-rate={rate}",
                f"-duration={seconds}s",
                "-timeout=10s",
                "-keepalive=true",
            ],
            input=targets.encode(),
            capture_output=True,
            check=True,
            cwd=scratch,
        )
        report = subprocess.run(
            [str(STATE_BIN / "vegeta"), "report", "-type=json"],
            input=attack.stdout,
            capture_output=True,
            check=True,
        )
    data = json.loads(report.stdout)
    return {
        "p50_ms": data["latencies"]["50th"] / 1e6,
        "p99_ms": data["latencies"]["99th"] / 1e6,
        "success": data["success"],
        "requests": data["requests"],
    }


def wrk(port: int, path: str, seconds: float) -> float:
    output = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    for line in output.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise SystemExit(f"wrk printed no rate:\n{output}")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds per step (smoke run)")
    arguments = parser.parse_args()
    latency_s, throughput_s, stall_s = (3, 2, 5) if arguments.quick else (30, 10, 60)
    for tool in ("wrk", str(STATE_BIN / "vegeta")):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing; run `make tools` first")

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        model_port = free_port()
        model = [sys.executable, "-m", "tests.collector.model_server", "--port", str(model_port)]
        results: dict[str, float] = {}
        with process(model, model_port, work / "model.log"):
            command, port = sidecar(work, model_port, f"sqlite:///{work / 'capture.db'}")
            with process(command, port, work / "sidecar.log"):
                vegeta(port, 2)  # warm both paths up
                vegeta(model_port, 2)
                direct = vegeta(model_port, latency_s)
                through = vegeta(port, latency_s)
                results["direct_p50"], results["direct_p99"] = direct["p50_ms"], direct["p99_ms"]
                results["sidecar_p50"], results["sidecar_p99"] = (
                    through["p50_ms"],
                    through["p99_ms"],
                )
                results["success"] = min(direct["success"], through["success"])
                for name, path in (("trivial", "/ping"), ("slow", "/ping?delay_ms=10")):
                    results[f"{name}_direct"] = wrk(model_port, path, throughput_s)
                    results[f"{name}_sidecar"] = wrk(port, path, throughput_s)

            with black_hole() as hole:
                stalled_dir = work / "stalled"
                stalled_dir.mkdir()
                command, port = sidecar(
                    stalled_dir, model_port, f"postgresql+psycopg://x@127.0.0.1:{hole}/stalled"
                )
                with process(command, port, stalled_dir / "sidecar.log") as running:
                    vegeta(port, 3)
                    baseline = rss_mib(running.pid)
                    peak = baseline
                    done = threading.Event()

                    def sample() -> None:
                        nonlocal peak
                        while not done.wait(0.5):
                            peak = max(peak, rss_mib(running.pid))

                    sampler = threading.Thread(target=sample)
                    sampler.start()
                    stalled = vegeta(port, stall_s)
                    done.set()
                    sampler.join()
                    spooled = sum(f.stat().st_size for f in (stalled_dir / "spool").glob("*"))
                results["rss_baseline"], results["rss_peak"] = baseline, peak
                results["stalled_success"] = stalled["success"]
                results["stalled_p99"] = stalled["p99_ms"]
                results["spooled_mib"] = spooled / 2**20

    report(results, latency_s, throughput_s, stall_s)


def report(r: dict[str, float], latency_s: float, throughput_s: float, stall_s: float) -> None:
    added_p50 = r["sidecar_p50"] - r["direct_p50"]
    added_p99 = r["sidecar_p99"] - r["direct_p99"]
    trivial = r["trivial_sidecar"] / r["trivial_direct"]
    slow = r["slow_sidecar"] / r["slow_direct"]
    growth = r["rss_peak"] - r["rss_baseline"]

    def verdict(ok: bool) -> str:
        return "meets goal" if ok else "MISSES goal"

    print(
        f"sidecar overhead (model server: scikit-learn on uvicorn; {latency_s}s at 200 rps, "
        f"{throughput_s}s per throughput run, {stall_s}s stalled)"
    )
    print(
        f"  latency p50: direct {r['direct_p50']:.2f} ms, sidecar {r['sidecar_p50']:.2f} ms,"
        f" added {added_p50:+.2f} ms (goal <= +0.5)  {verdict(added_p50 <= 0.5)}"
    )
    print(
        f"  latency p99: direct {r['direct_p99']:.2f} ms, sidecar {r['sidecar_p99']:.2f} ms,"
        f" added {added_p99:+.2f} ms (goal <= +2)  {verdict(added_p99 <= 2)}"
    )
    print(f"  success ratio at 200 rps: {r['success']:.4f}")
    print(
        f"  throughput, trivial route: direct {r['trivial_direct']:.0f}/s, sidecar "
        f"{r['trivial_sidecar']:.0f}/s, ratio {trivial:.2f} (goal >= 0.6)  "
        f"{verdict(trivial >= 0.6)}"
    )
    print(
        f"  throughput, 10 ms route: direct {r['slow_direct']:.0f}/s, sidecar "
        f"{r['slow_sidecar']:.0f}/s, ratio {slow:.2f} (goal >= 0.95)  {verdict(slow >= 0.95)}"
    )
    print(
        f"  RSS with the sink stalled: {r['rss_baseline']:.1f} -> peak {r['rss_peak']:.1f} MiB,"
        f" growth {growth:+.1f} MiB (goal <= 30)  {verdict(growth <= 30)}; "
        f"{r['spooled_mib']:.1f} MiB spooled, success {r['stalled_success']:.4f}, "
        f"p99 {r['stalled_p99']:.2f} ms"
    )


if __name__ == "__main__":
    main()
