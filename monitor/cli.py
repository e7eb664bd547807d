"""The ``monitor`` command line: parses config once and wires the parts together.

Errors from anywhere below arrive as :class:`~modeltap.errors.ModeltapError` and are turned
into a one-line message and an exit code here, and only here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from modeltap import __version__
from modeltap.configload import CONFIG_ENV
from modeltap.errors import ModeltapError
from monitor.commands import Settings
from monitor.commands.check import check
from monitor.commands.collect import collect
from monitor.commands.config import config
from monitor.commands.dashboards import dashboards
from monitor.commands.db import db
from monitor.commands.demo import demo
from monitor.commands.detect import detect
from monitor.commands.labels import labels
from monitor.commands.reference import reference
from monitor.commands.rules import rules
from monitor.commands.serve import serve
from monitor.commands.sidecar import sidecar

_HELP = """Watch machine-learning models in production: capture, drift, alerts.

Configuration comes from one YAML file (--config, or MONITOR_CONFIG), with every key
overridable from the environment: MONITOR_STORAGE__URL sets storage.url.
"""


class _Group(click.Group):
    """Maps modeltap errors to exit codes for every command below it."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModeltapError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)


@click.group(cls=_Group, help=_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"YAML configuration file [env {CONFIG_ENV}].",
)
@click.version_option(__version__, prog_name="modeltap")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    ctx.obj = Settings(config_path, dict(os.environ))


for command in (
    check,
    collect,
    config,
    dashboards,
    db,
    demo,
    detect,
    labels,
    reference,
    rules,
    serve,
    sidecar,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="monitor"))
