"""``monitor dashboards``: the Grafana dashboards, exported as files or pushed to Grafana."""

from __future__ import annotations

from pathlib import Path

import click

from modeltap.errors import InputError
from modeltap.extras import require
from monitor.commands import Settings, pass_settings


def _sdk() -> None:
    require("grafana_foundation_sdk", feature="monitor dashboards", extra="grafana")


@click.group()
def dashboards() -> None:
    """Four Grafana dashboards: overview, drift & quality, performance, modeltap health."""


@dashboards.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--prometheus-url",
    default="http://prometheus:9090",
    show_default=True,
    help="The data source URL written into the provisioning file.",
)
@click.option(
    "--dashboards-path",
    default="/var/lib/grafana/dashboards/modeltap",
    show_default=True,
    help="Where Grafana will find the JSON files (the dashboard provider's path).",
)
@pass_settings
def export(
    settings: Settings, /, directory: Path, prometheus_url: str, dashboards_path: str
) -> None:
    """Write the dashboards as JSON, with provisioning files, under DIRECTORY.

    Besides the four dashboards: provisioning/datasources (the Prometheus data source with
    exporter.datasource_uid), provisioning/dashboards (a file provider) and
    provisioning/alerting (Grafana-managed alert rules with the same thresholds as
    `monitor rules generate`). Mount DIRECTORY/provisioning at /etc/grafana/provisioning.

    \b
    Example:
      monitor --config modeltap.yaml dashboards export ./grafana
    """
    _sdk()
    from exporters.dashboards.render import export as write  # noqa: PLC0415

    config = settings.config()
    try:
        written = write(
            config, directory, prometheus_url=prometheus_url, dashboards_path=dashboards_path
        )
    except OSError as error:
        raise InputError(f"cannot write under {directory}: {error.strerror}") from None
    for path in written:
        click.echo(str(path))


@dashboards.command()
@click.option("--url", required=True, help="Grafana's base URL, e.g. https://grafana:3000.")
@click.option(
    "--token", envvar="GRAFANA_TOKEN", required=True, help="Service account token [GRAFANA_TOKEN]."
)
@click.option("--folder", help="Folder title to put them in (created when missing).")
@click.option(
    "--datasource-uid",
    help="Your Prometheus data source's uid in Grafana [default: exporter.datasource_uid].",
)
@pass_settings
def push(
    settings: Settings, /, url: str, token: str, folder: str | None, datasource_uid: str | None
) -> None:
    """Save the dashboards into a running Grafana (overwriting earlier copies).

    \b
    Example:
      monitor dashboards push --url https://grafana.example:3000 --token "$GRAFANA_TOKEN" \\
        --folder modeltap --datasource-uid PBFA97CFB590B2093
    """
    _sdk()
    require("grafana_client", feature="monitor dashboards push", extra="grafana")
    from exporters.dashboards.push import push as send  # noqa: PLC0415
    from exporters.dashboards.render import dashboards as boards  # noqa: PLC0415

    if not url.startswith(("http://", "https://")):
        raise InputError(f"--url must be an http:// or https:// URL, got {url!r}")
    config = settings.config()
    done = send(
        boards(config),
        url=url,
        token=token,
        folder=folder,
        datasource_from=config.exporter.datasource_uid,
        datasource_to=datasource_uid,
    )
    for pushed in done:
        click.echo(f"{pushed.uid}: version {pushed.version} {pushed.url or ''}".rstrip())
