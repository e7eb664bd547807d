"""``monitor serve``: the labels API and CloudEvents ingest, with health and metrics."""

from __future__ import annotations

import logging

import click

from modeltap.errors import ListenError
from modeltap.logs import setup_logging
from monitor.commands import Settings, pass_settings


@click.command()
@click.option("--listen", help="Address to serve on [serve.listen, 0.0.0.0:8001].")
@pass_settings
def serve(settings: Settings, /, listen: str | None) -> None:
    """Serve the labels API and CloudEvents ingest, with /metrics, /healthz and /readyz.

    POST /v1/labels takes late labels; POST /v1/cloudevents takes the calls KServe's and
    MLServer's inference loggers send (point their logger URL here). Labels are validated
    whole and stored in one transaction; set serve.labels_token (or labels_token_file) to
    require 'Authorization: Bearer <token>'. Data older than storage.retention is purged
    every hour.

    /metrics carries the newest detector results and the detectors' run health, read from
    the store at scrape time (the same answer from every replica).

    \b
    Example:
      curl -X POST localhost:8001/v1/labels -H 'Content-Type: application/json' \\
        -d '[{"request_id": "4f1c…", "label": 1}]'
    """
    from aiohttp import web  # noqa: PLC0415 - keep `monitor --help` fast
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    from collector.ingest import bearer_token  # noqa: PLC0415
    from collector.sidecar import split_address  # noqa: PLC0415
    from modeltap.store import open_store  # noqa: PLC0415
    from monitor.serve import build_app  # noqa: PLC0415

    config = settings.config({"serve": {"listen": listen}} if listen else None)
    setup_logging()
    store = open_store(config.storage.url)
    registry = CollectorRegistry()
    app = build_app(config, store, registry)
    host, port = split_address(config.serve.listen)
    logging.getLogger("modeltap.serve").info(
        "serving on %s (labels %s)",
        config.serve.listen,
        "require a bearer token" if bearer_token(config) else "are open: set serve.labels_token",
    )
    try:
        web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=10)
    except OSError as error:  # the bind, before anything is served
        raise ListenError.binding(config.serve.listen, "serve.listen", error) from None
