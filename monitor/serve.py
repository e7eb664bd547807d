"""What `monitor serve` runs: the ingest routes, health, metrics and housekeeping, composed.

Routes: POST /v1/labels, POST /v1/cloudevents, GET /metrics (ingest counters and the
exporter's detector results), /healthz, /readyz. In the
background: logged halves that never found their partner are stored after
``serve.pair_timeout``, and data older than ``storage.retention`` is purged every hour.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from collector.capture import Capturer
from collector.cloudevents import CloudEventsHandler
from collector.ingest import IngestMetrics, LabelsHandler, StoreRunner, bearer_token, problem
from exporters.endpoint import register_exporter
from modeltap.config import MonitorConfig
from modeltap.errors import StorageError
from modeltap.store import SqlStore

log = logging.getLogger("modeltap.serve")

MAX_BODY = 16 * 2**20
PURGE_EVERY = 3600.0


def build_app(
    config: MonitorConfig, store: SqlStore, registry: CollectorRegistry
) -> web.Application:
    """The aiohttp application of `monitor serve` over ``store``, metrics in ``registry``."""
    runner = StoreRunner(store)
    metrics = IngestMetrics(registry)
    labels = LabelsHandler(runner, metrics, token=bearer_token(config))
    cloudevents = CloudEventsHandler(
        runner, Capturer({model.name: model for model in config.models}), metrics
    )

    register_exporter(registry, store, config, lambda: datetime.now(UTC))

    async def exposition(_request: web.Request) -> web.Response:
        # A scrape reads the store (the exporter's results): off the event loop.
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        try:
            await runner.call(store.ping)
        except StorageError as error:
            return problem(503, str(error))
        return web.json_response({"status": "ready"})

    async def housekeeping(_app: web.Application) -> AsyncIterator[None]:
        jobs = [
            asyncio.create_task(
                _every(
                    min(60.0, config.serve.pair_timeout.total_seconds()),
                    lambda: cloudevents.expire(config.serve.pair_timeout),
                    "storing unpaired calls",
                )
            ),
            asyncio.create_task(
                _every(PURGE_EVERY, lambda: _purge(runner, store, config), "retention purge")
            ),
        ]
        yield
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        runner.close()
        store.close()

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/v1/labels", labels.handle)
    app.router.add_post("/v1/cloudevents", cloudevents.handle)
    app.router.add_get("/metrics", exposition)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.cleanup_ctx.append(housekeeping)
    return app


async def _every(seconds: float, job: Callable[[], Awaitable[object]], what: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except StorageError as error:
            log.warning("%s failed: %s", what, error)


async def _purge(runner: StoreRunner, store: SqlStore, config: MonitorConfig) -> None:
    # For small setups where serve is the only daemon; every replica may do it, as a
    # purge that finds nothing is cheap.
    cutoff = datetime.now(UTC) - config.storage.retention
    summary = await runner.call(store.purge, cutoff)
    if summary.requests or summary.labels or summary.results:
        log.info("retention: removed data before %s (%s)", cutoff, summary)
