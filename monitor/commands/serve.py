"""``monitor serve``: the labels API and the exporter's /metrics (detectors as they land)."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime

import click

from monitor.commands import Settings, pass_settings


@click.command()
@click.option("--listen", help="Address to serve on [serve.listen, 0.0.0.0:8001].")
@pass_settings
def serve(settings: Settings, /, listen: str | None) -> None:
    """Serve the labels API (POST /v1/labels) with /metrics, /healthz and /readyz.

    /metrics carries the newest detector results and the detectors' run health, read from
    the store at scrape time (the same answer from every replica).

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

    from collector.ingest import (  # noqa: PLC0415
        IngestMetrics,
        LabelsHandler,
        StoreRunner,
        bearer_token,
        problem,
    )
    from collector.sidecar import split_address  # noqa: PLC0415
    from exporters.endpoint import register_exporter  # noqa: PLC0415
    from monitor.errors import StorageError  # noqa: PLC0415
    from monitor.store import SqlStore  # noqa: PLC0415

    config = settings.config({"serve": {"listen": listen}} if listen else None)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    token = bearer_token(config)
    store = SqlStore.open(config.storage.url, migrate=config.storage.url.startswith("sqlite"))
    runner = StoreRunner(store)
    registry = CollectorRegistry()
    labels = LabelsHandler(runner, IngestMetrics(registry), token=token)
    register_exporter(registry, store, config, lambda: datetime.now(UTC))

    async def metrics(_request: web.Request) -> web.Response:
        # A scrape reads the store: off the event loop, like every other store call here.
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

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
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)

    async def close(_app: web.Application) -> None:
        runner.close()
        store.close()

    app.on_cleanup.append(close)
    host, port = split_address(config.serve.listen)
    logging.getLogger("modeltap.serve").info(
        "serving on %s (labels %s)",
        config.serve.listen,
        "require a bearer token" if token else "are open: set serve.labels_token",
    )
    web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=10)
