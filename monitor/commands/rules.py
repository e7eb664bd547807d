"""``monitor rules``: Prometheus alert rules generated from the configuration's thresholds."""

from __future__ import annotations

from pathlib import Path

import click

from modeltap.errors import InputError
from monitor.commands import Settings, pass_settings


@click.group()
def rules() -> None:
    """Prometheus alert rules from the same thresholds the detectors use."""


@rules.command()
@click.option(
    "--format",
    "form",
    type=click.Choice(["prometheus", "prometheusrule"]),
    default="prometheus",
    show_default=True,
    help="A rule file for rule_files:, or a Prometheus Operator PrometheusRule object.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write here, not stdout.",
)
@click.option("--name", default="modeltap", show_default=True, help="PrometheusRule name.")
@click.option("--namespace", help="PrometheusRule namespace.")
@pass_settings
def generate(
    settings: Settings, /, form: str, output: Path | None, name: str, namespace: str | None
) -> None:
    """Write the alert rules (check them with `promtool check rules FILE`).

    Every threshold comes from detectors.thresholds and the models' overrides; a threshold
    left empty generates no rule. Each alert has a severity, a summary, a description and
    a runbook_url into the README (exporter.runbook_url).

    \b
    Examples:
      monitor --config modeltap.yaml rules generate -o /etc/prometheus/rules/modeltap.yml
      monitor rules generate --format prometheusrule --namespace monitoring | kubectl apply -f -
    """
    from exporters.rules import prometheus_rule, rule_file  # noqa: PLC0415

    config = settings.config()
    source = settings.path.name if settings.path is not None else "the default configuration"
    if form == "prometheusrule":
        text = prometheus_rule(config, source, name=name, namespace=namespace)
    else:
        text = rule_file(config, source)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write {output}: {error.strerror}") from None
    click.echo(f"wrote {output}", err=True)


@rules.command("list")
@pass_settings
def list_alerts(settings: Settings, /) -> None:
    """List every alert: severity, how long it must hold, and its runbook anchor."""
    from exporters.alerts import ALERTS, variants, wait_for  # noqa: PLC0415
    from modeltap.units import format_duration  # noqa: PLC0415

    config = settings.config()
    for alert in ALERTS:
        state = "on" if variants(alert, config) else "off (no threshold set)"
        wait = format_duration(wait_for(alert, config))
        click.echo(
            f"{alert.name:<26} {alert.severity:<8} for {wait:<4} {state:<22} #{alert.anchor}"
        )
