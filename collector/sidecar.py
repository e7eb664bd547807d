"""`monitor sidecar`: compose proxy, capture pipeline, sink, spool and metrics; run; stop.

Shutdown on SIGTERM: stop accepting, let in-flight requests finish, flush the queue to the
sink or the spool, exit 0 — all within ``sidecar.shutdown_grace``. A second SIGTERM skips
the waiting and spools what is queued. A restart replays the spool.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from collector.capture import Capturer
from collector.metrics import SidecarMetrics
from collector.pipeline import Pipeline, PipelineSettings
from collector.proxy import Proxy
from collector.sinks import Sink, open_sink
from collector.spool import Spool
from collector.upstream import UpstreamPool
from modeltap.config import MonitorConfig
from modeltap.errors import ListenError
from modeltap.logs import setup_logging

log = logging.getLogger("modeltap.sidecar")

_HEADER_LIMIT = 64 * 1024  # model servers see long query strings and large headers
_MAX_HEADERS = 1024
# The shutdown's own waits end within the grace period; the exit guard fires this much later.
_GUARD_MARGIN = 5.0


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - the pod's network


async def start_site(runner: web.BaseRunner, address: str, setting: str, **options: Any) -> None:
    """Listen on ``address``; a port that cannot be had is one sentence (ListenError)."""
    host, port = split_address(address)
    try:
        await web.TCPSite(runner, host, port, **options).start()
    except OSError as error:
        await runner.cleanup()
        raise ListenError.binding(address, setting, error) from None


@dataclass
class Stopper:
    """Turns SIGTERM/SIGINT into a warm stop, and a second one into a hurried stop.

    With ``guard_after`` (the process's own entry points set it), the first stop also arms
    :func:`arm_exit_guard`, so the process is gone that many seconds later whatever happens.
    """

    requested: asyncio.Event = field(default_factory=asyncio.Event)
    hurried: bool = False
    guard_after: float | None = None

    def __call__(self) -> None:
        if self.requested.is_set():
            self.hurried = True
            log.warning("second stop signal: spooling the queue and exiting now")
        elif self.guard_after is not None:
            arm_exit_guard(self.guard_after)
        self.requested.set()


def admin_app(metrics_registry: CollectorRegistry, ready: Callable[[], bool]) -> web.Application:
    """/metrics, /healthz (the process answers) and /readyz (the upstream answers)."""

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics_registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        if ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "upstream unreachable"}, status=503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def admin_runner(metrics_registry: CollectorRegistry, ready: Callable[[], bool]) -> web.AppRunner:
    """The runner for :func:`admin_app`, quick to stop."""
    # Scrapes and probes are quick; aiohttp's default 60 s wait for them would outlast the
    # shutdown grace.
    return web.AppRunner(admin_app(metrics_registry, ready), access_log=None, shutdown_timeout=1.0)


@dataclass
class Parts:
    """The sidecar's pieces, built from the configuration and wired together."""

    registry: CollectorRegistry
    metrics: SidecarMetrics
    pipeline: Pipeline
    pool: UpstreamPool
    proxy: Proxy
    sink: Sink
    spool: Spool


def assemble(config: MonitorConfig, clock: Callable[[], datetime]) -> Parts:
    """Build the parts; nothing here opens sockets or touches the sink yet."""
    settings = config.sidecar
    registry = CollectorRegistry()
    # process_* (CPU, memory): the dashboards' resources outside Kubernetes.
    ProcessCollector(registry=registry)
    metrics = SidecarMetrics(registry)
    capturer = Capturer({model.name: model for model in config.models})
    sink = open_sink(
        config.sink_url,
        config.kafka,
        timeout=settings.sink_timeout.total_seconds(),
        source=f"/modeltap/sidecar/{settings.model or 'default'}",
    )
    spool = Spool(settings.spool_dir, settings.spool_max_bytes)
    pipeline = Pipeline(
        capturer,
        sink,
        spool,
        metrics,
        PipelineSettings(
            queue_size=settings.queue_size,
            queue_max_bytes=settings.queue_max_bytes,
            batch_size=settings.batch_size,
            flush_interval=settings.flush_interval.total_seconds(),
            sink_timeout=settings.sink_timeout.total_seconds(),
        ),
    )
    timeout = settings.upstream_timeout.total_seconds()
    pool = UpstreamPool(settings.upstream, connect_timeout=min(5.0, timeout), read_timeout=timeout)
    only = config.models[0].name if len(config.models) == 1 else "default"
    proxy = Proxy(
        pool,
        pipeline,
        capturer,
        metrics,
        model=settings.model or only,
        version=settings.model_version or "",
        clock=clock,
    )
    return Parts(registry, metrics, pipeline, pool, proxy, sink, spool)


async def run_sidecar(
    config: MonitorConfig,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    stopper: Stopper | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Serve until stopped; returns the process exit code."""
    settings = config.sidecar
    stopper = stopper or Stopper()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopper)
    parts = assemble(config, clock)
    if parts.spool.pending:
        log.info(
            "replaying %d spooled batch(es) from %s", parts.spool.pending, parts.spool.directory
        )
    upstream_ok = False

    async def probe() -> None:
        nonlocal upstream_ok
        while not stopper.requested.is_set():
            upstream_ok = await parts.pool.probe()
            await asyncio.sleep(2.0)

    grace = settings.shutdown_grace.total_seconds()
    server = web.Server(
        parts.proxy.handle,
        handler_cancellation=False,
        access_log=None,
        auto_decompress=False,
        max_line_size=_HEADER_LIMIT,
        max_field_size=_HEADER_LIMIT,
        # aiohttp stops at 128 headers; model servers (uvicorn, Tornado) take hundreds, and
        # a proxy that refuses what its upstream accepts is not transparent.
        max_headers=_MAX_HEADERS,
    )
    data = web.ServerRunner(server, shutdown_timeout=max(grace - 2.0, 1.0))
    admin = admin_runner(parts.registry, lambda: upstream_ok)
    for runner, address, setting in (
        (data, settings.listen, "sidecar.listen"),
        (admin, settings.metrics_listen, "sidecar.metrics_listen"),
    ):
        await runner.setup()
        await start_site(runner, address, setting, backlog=1024)
    worker = asyncio.create_task(parts.pipeline.run(), name="capture worker")
    helpers = [
        asyncio.create_task(parts.pipeline.replay(), name="spool replay"),
        asyncio.create_task(probe(), name="readiness probe"),
    ]
    log.info(
        "sidecar on %s -> %s, sink %s, metrics on %s",
        settings.listen,
        settings.upstream,
        parts.sink.name,
        settings.metrics_listen,
    )
    if on_ready is not None:
        on_ready()

    await stopper.requested.wait()
    deadline = time.monotonic() + grace
    log.info("stopping: finishing in-flight requests (at most %.0fs)", grace)
    await data.cleanup()  # stop accepting, then wait for in-flight requests
    await _stop_tasks(parts.pipeline, worker, helpers, deadline)
    await parts.pipeline.close(deadline=time.monotonic() if stopper.hurried else deadline - 0.5)
    log.info("stopped with %d batch(es) spooled", parts.spool.pending)
    await admin.cleanup()
    parts.pool.close()
    try:
        async with asyncio.timeout(max(deadline - time.monotonic(), 1.0)):
            await parts.sink.close()
    except TimeoutError:
        log.warning("the sink %s did not close in time", parts.sink.name)
    return 0


async def _stop_tasks(
    pipeline: Pipeline,
    worker: asyncio.Task[None],
    helpers: list[asyncio.Task[None]],
    deadline: float,
) -> None:
    for task in helpers:
        task.cancel()  # a replay cut short leaves its batch on disk for the next start
    pipeline.stop()
    # The worker finishes the batch in hand; one stuck past the deadline is cancelled, and
    # Pipeline.close spools whatever write is still in flight.
    done, _ = await asyncio.wait([worker], timeout=max(deadline - time.monotonic() - 1.0, 0.1))
    if not done:
        worker.cancel()
    # Every wait here is bounded: a task that does not end on its cancel must cost a
    # warning, not the pod's whole grace period.
    _, lingering = await asyncio.wait(
        [worker, *helpers], timeout=max(deadline - time.monotonic() - 0.5, 0.1)
    )
    for task in lingering:
        log.warning("%s did not stop in time; leaving it behind", task.get_name())


def arm_exit_guard(seconds: float) -> threading.Timer:
    """Leave with code 1 if the process is still stopping ``seconds`` from now.

    Every wait in the shutdown is bounded, so this should never fire. It is the backstop
    that turns a mistake in that promise into one log line and an exit, rather than a pod
    that hangs in Terminating until the kubelet kills it without a word.
    """

    def overran() -> None:
        log.error("still stopping %.0fs after the stop signal; exiting now", seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1)

    guard = threading.Timer(seconds, overran)
    guard.daemon = True  # must not itself keep the process alive
    guard.start()
    return guard


def guarded_stopper(config: MonitorConfig) -> Stopper:
    """The stopper of a `monitor sidecar` process: exit guaranteed after the grace period."""
    return Stopper(guard_after=config.sidecar.shutdown_grace.total_seconds() + _GUARD_MARGIN)


def exit_past_stuck_threads(code: int, wait: float = 1.0) -> None:
    """Leave at once, with ``code``, if a worker thread is still stuck after ``wait`` s.

    Python joins non-daemon threads at exit. A write to a database that hangs (it accepted
    the connection and stopped answering) never returns, so the process would never end and
    the pod would be killed at the end of its grace period. The write's batch is already in
    the spool by now, so there is nothing left to wait for.
    """
    deadline = time.monotonic() + wait
    stuck = []
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(deadline - time.monotonic(), 0.0))
        if thread.is_alive():
            stuck.append(thread.name)
    if stuck:
        log.warning("exiting with %s still blocked (its batch is in the spool)", ", ".join(stuck))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(config: MonitorConfig) -> int:
    """Run the sidecar on uvloop when available; logs go to stderr."""
    setup_logging()
    # The capture thread (sink writes) must hand the GIL back to the event loop quickly, or
    # proxied requests wait on it: 5 ms by default, 0.5 ms here.
    sys.setswitchinterval(0.0005)
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up

        code = uvloop.run(run_sidecar(config, stopper=guarded_stopper(config)))
    except ImportError:
        code = asyncio.run(run_sidecar(config, stopper=guarded_stopper(config)))
    exit_past_stuck_threads(code)
    return code
