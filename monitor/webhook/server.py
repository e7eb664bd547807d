"""The HTTPS server of `monitor webhook`: POST /mutate, plus /metrics and probes on HTTP.

The API server calls /mutate over TLS; probes and Prometheus use the plain admin port,
so neither needs the webhook's CA. The certificate is re-read every ``reload_every``
seconds (see :mod:`monitor.webhook.certs`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from modeltap.errors import ListenError
from monitor.webhook.certs import ReloadingCertificate
from monitor.webhook.review import answer
from monitor.webhook.settings import InjectionSettings

log = logging.getLogger("modeltap.webhook")

# A pod object is at most what etcd stores (1.5 MiB); its review wraps it once or twice.
MAX_REVIEW_BYTES = 8 * 2**20


class WebhookMetrics:
    """The webhook's counters, on their own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.reviews = Counter(
            "modeltap_webhook_reviews",
            "Admission reviews answered, by outcome (injected, already_injected, skipped, …).",
            ["outcome"],
            registry=registry,
        )
        self.reloads = Counter(
            "modeltap_webhook_certificate_reloads",
            "Times a renewed serving certificate was loaded without a restart.",
            registry=registry,
        )


def mutate_app(settings: InjectionSettings, metrics: WebhookMetrics) -> web.Application:
    """The application the API server calls: POST /mutate."""

    async def mutate(request: web.Request) -> web.Response:
        status, body, outcome = answer(await request.read(), settings)
        metrics.reviews.labels(outcome).inc()
        return web.json_response(body, status=status)

    app = web.Application(client_max_size=MAX_REVIEW_BYTES)
    app.router.add_post("/mutate", mutate)
    return app


def admin_app(registry: CollectorRegistry) -> web.Application:
    """/metrics, /healthz and /readyz over plain HTTP."""

    async def exposition(_request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def ok(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/metrics", exposition)
    app.router.add_get("/healthz", ok)
    app.router.add_get("/readyz", ok)
    return app


@dataclass(frozen=True)
class Listen:
    """Where the webhook serves: HTTPS for the API server, HTTP for probes and metrics."""

    host: str
    port: int
    admin_host: str
    admin_port: int

    @classmethod
    def parse(cls, address: str, admin: str) -> Listen:
        """From two host:port strings; an empty host means every interface.

        >>> Listen.parse("127.0.0.1:8443", ":9111")
        Listen(host='127.0.0.1', port=8443, admin_host='0.0.0.0', admin_port=9111)
        """
        every = "0.0.0.0"  # noqa: S104 - a pod's own network namespace
        host, _, port = address.rpartition(":")
        admin_host, _, admin_port = admin.rpartition(":")
        return cls(
            host.strip("[]") or every, int(port), admin_host.strip("[]") or every, int(admin_port)
        )


async def run(
    settings: InjectionSettings,
    certificate: ReloadingCertificate,
    listen: Listen,
    reload_every: float,
) -> None:
    """Serve until SIGTERM or SIGINT; the certificate is re-read every ``reload_every`` s."""
    registry = CollectorRegistry()
    metrics = WebhookMetrics(registry)
    runners = [
        web.AppRunner(mutate_app(settings, metrics), access_log=None, shutdown_timeout=5),
        web.AppRunner(admin_app(registry), access_log=None, shutdown_timeout=1),
    ]
    for runner in runners:
        await runner.setup()
    try:
        sites = (
            (
                web.TCPSite(runners[0], listen.host, listen.port, ssl_context=certificate.context),
                f"{listen.host}:{listen.port}",
                "--listen",
            ),
            (
                web.TCPSite(runners[1], listen.admin_host, listen.admin_port),
                f"{listen.admin_host}:{listen.admin_port}",
                "--metrics-listen",
            ),
        )
        for site, address, option in sites:
            try:
                await site.start()
            except OSError as error:
                raise ListenError.binding(address, option, error) from None
        log.info(
            "serving /mutate on https://%s:%d, metrics on http://%s:%d",
            listen.host,
            listen.port,
            listen.admin_host,
            listen.admin_port,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=reload_every)
            except TimeoutError:
                if certificate.reload():
                    metrics.reloads.inc()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
