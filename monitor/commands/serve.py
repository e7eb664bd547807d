"""``monitor serve``: the labels API (and, as they land, detectors and the exporter)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import click

from monitor.commands import Settings, pass_settings
from monitor.logs import setup_logging


@click.command()
@click.option("--listen", help="Address to serve on [serve.listen, 0.0.0.0:8001].")
@pass_settings
def serve(settings: Settings, /, listen: str | None) -> None:
    """Serve the labels API and CloudEvents ingest, with /metrics, /healthz and /readyz.

    POST /v1/labels takes late labels; POST /v1/cloudevents takes the calls KServe's and
    MLServer's inference loggers send (point their logger URL here).

    Labels are validated whole and stored in one transaction; set serve.labels_token (or
    labels_token_file) to require 'Authorization: Bearer <token>'.

    \b
    Example:
      curl -X POST localhost:8001/v1/labels -H 'Content-Type: application/json' \\
        -d '[{"request_id": "4f1c…", "label": 1}]'
    """
    from aiohttp import web  # noqa: PLC0415 - keep `monitor --help` fast
    from prometheus_client import CollectorRegistry  # noqa: PLC0415
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

    from collector.capture import Capturer  # noqa: PLC0415
    from collector.cloudevents import CloudEventsHandler  # noqa: PLC0415
    from collector.ingest import (  # noqa: PLC0415
        IngestMetrics,
        LabelsHandler,
        StoreRunner,
        bearer_token,
        problem,
    )
    from collector.sidecar import split_address  # noqa: PLC0415
    from monitor.errors import StorageError  # noqa: PLC0415
    from monitor.store import SqlStore  # noqa: PLC0415

    config = settings.config({"serve": {"listen": listen}} if listen else None)
    setup_logging()
    token = bearer_token(config)
    store = SqlStore.open(config.storage.url, migrate=config.storage.url.startswith("sqlite"))
    runner = StoreRunner(store)
    registry = CollectorRegistry()
    ingest_metrics = IngestMetrics(registry)
    labels = LabelsHandler(runner, ingest_metrics, token=token)
    capturer = Capturer({model.name: model for model in config.models})
    cloudevents = CloudEventsHandler(runner, capturer, ingest_metrics)
    log = logging.getLogger("modeltap.serve")

    async def expire_halves() -> None:
        # Halves whose partner never came are stored as requests without rows.
        while True:
            await asyncio.sleep(min(60.0, config.serve.pair_timeout.total_seconds()))
            try:
                await cloudevents.expire(config.serve.pair_timeout)
            except StorageError as error:
                log.warning("storing unpaired logged calls failed: %s", error)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        try:
            await asyncio.get_running_loop().run_in_executor(None, store.ping)
        except StorageError as error:
            return problem(503, str(error))
        return web.json_response({"status": "ready"})

    app = web.Application(client_max_size=16 * 2**20)
    app.router.add_post("/v1/labels", labels.handle)
    app.router.add_post("/v1/cloudevents", cloudevents.handle)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)

    async def background(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(expire_halves())
        yield
        task.cancel()
        runner.close()
        store.close()

    app.cleanup_ctx.append(background)
    host, port = split_address(config.serve.listen)
    log.info(
        "serving on %s (labels %s)",
        config.serve.listen,
        "require a bearer token" if token else "are open: set serve.labels_token",
    )
    web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=10)
