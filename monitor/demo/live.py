"""The live half of `monitor demo`: a model server behind a real `monitor sidecar` process.

Requests go to the sidecar exactly as they would in a pod; the sidecar forwards them to the
model server and writes what it saw into the demo's SQLite database. Halfway through, the
callers change (older customers, more on the "pro" plan), which the summary shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import yaml
from rich.console import Console
from rich.progress import Progress

from modeltap.errors import ModeltapError
from monitor.demo.population import MODEL, customers

_STOP_WAIT = 60


@dataclass(frozen=True, slots=True)
class LiveRun:
    """What the live traffic did, as the callers and the sidecar saw it."""

    sent: int
    answered_ok: int
    spooled: float
    dropped: float
    unparsed: float
    exit_code: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def sidecar_config(directory: Path, sink: str, model_port: int) -> tuple[Path, int, int]:
    port, metrics = _free_port(), _free_port()
    config = {
        "sink": {"url": sink},
        "models": [
            {
                "name": MODEL,
                "task": "classification",
                "positive_class": 1,
                "features": [
                    {"name": "age", "type": "numerical"},
                    {"name": "tenure_months", "type": "numerical"},
                    {"name": "plan", "type": "categorical"},
                ],
                "payload": {"prediction_path": "churn", "score_path": "probability"},
            }
        ],
        "sidecar": {
            "upstream": f"http://127.0.0.1:{model_port}",
            "listen": f"127.0.0.1:{port}",
            "metrics_listen": f"127.0.0.1:{metrics}",
            "model": MODEL,
            "spool_dir": str(directory / "spool"),
            "flush_interval": "100ms",
        },
    }
    path = directory / "sidecar.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, port, metrics


def _payload(rng: np.random.Generator, drifted: bool, oip: bool) -> tuple[str, dict[str, Any]]:
    rows = int(rng.integers(1, 4))
    ages, tenures, plans = customers(rng, rows, drifted=drifted)
    if oip:
        return f"/v2/models/{MODEL}/versions/2/infer", {
            "inputs": [
                {"name": "age", "shape": [rows], "datatype": "FP32", "data": ages},
                {"name": "tenure_months", "shape": [rows], "datatype": "INT64", "data": tenures},
                {"name": "plan", "shape": [rows], "datatype": "BYTES", "data": plans},
            ]
        }
    instances = [
        {"age": a, "tenure_months": t, "plan": p}
        for a, t, p in zip(ages, tenures, plans, strict=True)
    ]
    return f"/v1/models/{MODEL}:predict", {"instances": instances}


async def _traffic(
    port: int,
    seconds: float,
    rps: float,
    *,
    seed: int,
    console: Console,
    on_sent: Callable[[int, int], None],
) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    total = int(seconds * rps)
    ok = 0
    started = time.monotonic()
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:

        async def one(index: int) -> None:
            nonlocal ok
            # Version 2 (Open Inference) takes a tenth of the traffic, as a canary would.
            path, body = _payload(rng, index >= total // 2, rng.random() < 0.1)
            async with session.post(path, json=body) as response:
                await response.read()
                ok += response.status == 200

        tasks: set[asyncio.Task[None]] = set()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("live traffic through the sidecar", total=total)
            for index in range(total):
                await asyncio.sleep(max(0.0, started + index / rps - time.monotonic()))
                on_sent(index + 1, total)
                job = asyncio.create_task(one(index))
                tasks.add(job)
                job.add_done_callback(tasks.discard)
                job.add_done_callback(lambda _job: progress.advance(task))
            await asyncio.gather(*tasks)
    return total, ok


def _metric(exposition: str, name: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ModeltapError(f"the demo's {log.stem} exited at start-up; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our own http URL
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise ModeltapError(f"the demo's {log.stem} did not get ready in 30 s; see {log}")


def _start(
    command: list[str], log: Path, processes: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        # Its own session: a Ctrl-C at the terminal reaches the demo alone, which then stops
        # the sidecar and the model server itself, in order, and waits for them.
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    processes.append(process)
    return process


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each process still running, last started first (the sidecar flushes what
    it holds while the model server still answers), then SIGKILL to any still there after
    the grace; a second Ctrl-C skips the wait."""
    deadline = time.monotonic() + _STOP_WAIT
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            for process in reversed(processes):
                if process.poll() is None:
                    process.terminate()
                    process.wait(max(0.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def run_live(
    directory: Path,
    sink: str,
    *,
    seconds: float,
    rps: float,
    seed: int,
    console: Console,
    on_sent: Callable[[int, int], None] = lambda sent, total: None,
) -> LiveRun:
    """Start the model server and the sidecar, send traffic, stop the sidecar with SIGTERM.

    However it ends (Ctrl-C included), both processes are stopped before it returns.
    """
    model_port = _free_port()
    config, port, metrics_port = sidecar_config(directory, sink, model_port)
    logs = directory / "model.log", directory / "sidecar.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        model = _start(
            [sys.executable, "-m", "monitor.demo.model", "--port", str(model_port)],
            logs[0],
            processes,
        )
        sidecar = _start(
            [sys.executable, "-m", "monitor", "--config", str(config), "sidecar"],
            logs[1],
            processes,
        )
        _wait_ready(f"http://127.0.0.1:{model_port}/v2/health/ready", model, logs[0])
        _wait_ready(f"http://127.0.0.1:{metrics_port}/readyz", sidecar, logs[1])
        console.print(
            f"model server on :{model_port}, [bold]monitor sidecar[/] on :{port} in front of it "
            f"(metrics :{metrics_port}), writing to {sink}"
        )
        sent, ok = asyncio.run(
            _traffic(port, seconds, rps, seed=seed, console=console, on_sent=on_sent)
        )
        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(metrics) as response:
            exposition = response.read().decode()
        sidecar.send_signal(signal.SIGTERM)
        try:
            code = sidecar.wait(_STOP_WAIT)
        except subprocess.TimeoutExpired:
            raise ModeltapError(
                f"the sidecar did not exit within {_STOP_WAIT} s of SIGTERM (its grace period "
                f"is 25 s); see {logs[1]}"
            ) from None
    finally:
        stop(processes)
    return LiveRun(
        sent=sent,
        answered_ok=ok,
        spooled=_metric(exposition, "modeltap_capture_spooled_events_total"),
        dropped=_metric(exposition, "modeltap_capture_dropped_events_total"),
        unparsed=_metric(exposition, "modeltap_capture_unparsed_events_total"),
        exit_code=code,
    )
