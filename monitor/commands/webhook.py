"""``monitor webhook``: the HTTPS admission webhook that injects the capture sidecar."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import BinaryIO

import click

from modeltap.errors import InputError
from monitor.commands import Settings, pass_settings

_FILE = click.Path(path_type=Path, dir_okay=False)


@click.command()
@click.option(
    "--settings",
    "settings_file",
    type=_FILE,
    required=True,
    envvar="MONITOR_WEBHOOK_SETTINGS",
    help="Injector settings (YAML; the chart renders them from injector.sidecar).",
)
@click.option("--cert-file", type=_FILE, envvar="MONITOR_WEBHOOK_CERT_FILE", help="TLS cert.")
@click.option("--key-file", type=_FILE, envvar="MONITOR_WEBHOOK_KEY_FILE", help="TLS key.")
@click.option("--listen", default="0.0.0.0:8443", show_default=True, help="HTTPS address.")
@click.option(
    "--metrics-listen",
    default="0.0.0.0:9111",
    show_default=True,
    help="HTTP address of /metrics, /healthz and /readyz.",
)
@click.option(
    "--reload-every",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between checks of the certificate files for a renewed certificate.",
)
@click.option(
    "--dry-run",
    "dry_run",
    type=click.File("rb"),
    help="Answer the AdmissionReview in this file ('-': stdin) on stdout, and exit.",
)
@pass_settings
def webhook(
    _settings: Settings,
    /,
    *,
    settings_file: Path,
    cert_file: Path | None,
    key_file: Path | None,
    listen: str,
    metrics_listen: str,
    reload_every: float,
    dry_run: BinaryIO | None,
) -> None:
    """Inject the modeltap sidecar into pods labelled modeltap.io/inject: "true".

    The API server sends each new pod's AdmissionReview to POST /mutate; the answer is a
    JSON patch adding the sidecar (a native sidecar unless the settings say native: false)
    and taking over the model's named port. Pods that already carry the sidecar, or that
    cannot be injected, are admitted unchanged, with a warning saying why. The certificate
    files are re-read every --reload-every seconds, so a renewed Secret is served without
    a restart.

    \b
    Examples:
      monitor webhook --settings /etc/modeltap/injector.yaml \\
        --cert-file /tls/tls.crt --key-file /tls/tls.key
      monitor webhook --settings injector.yaml --dry-run review.json
    """
    from monitor.webhook.settings import load_settings  # noqa: PLC0415 - `--help` stays fast

    injection = load_settings(settings_file)
    if dry_run is not None:
        from monitor.webhook.review import answer  # noqa: PLC0415

        status, body, _outcome = answer(dry_run.read(), injection)
        click.echo(json.dumps(body, indent=2))
        sys.exit(0 if status == 200 else 1)
    if cert_file is None or key_file is None:
        raise InputError("serving needs --cert-file and --key-file (or use --dry-run FILE)")

    import asyncio  # noqa: PLC0415

    from modeltap.logs import setup_logging  # noqa: PLC0415
    from monitor.webhook.certs import ReloadingCertificate  # noqa: PLC0415
    from monitor.webhook.server import Listen, run  # noqa: PLC0415

    setup_logging()
    certificate = ReloadingCertificate(cert_file, key_file)
    try:
        addresses = Listen.parse(listen, metrics_listen)
    except ValueError:
        raise InputError(f"expected host:port, got {listen!r} and {metrics_listen!r}") from None
    asyncio.run(run(injection, certificate, addresses, reload_every))
