"""The ``monitor`` command line: parses config once and wires the parts together.

Errors from anywhere below arrive as :class:`~modeltap.errors.ModeltapError` and are turned
into a one-line message and an exit code here, and only here.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any, cast

import click

from modeltap import __version__
from modeltap.configload import CONFIG_ENV
from modeltap.errors import ModeltapError
from monitor.commands import Settings, accept_config

_HELP = """Watch machine-learning models in production: capture, drift, alerts.

Configuration comes from one YAML file (--config, or MONITOR_CONFIG), with every key
overridable from the environment: MONITOR_STORAGE__URL sets storage.url.
"""


# One module per command in monitor.commands, each defining the command under its own name.
_COMMANDS = (
    "backfill",
    "check",
    "collect",
    "config",
    "dashboards",
    "db",
    "demo",
    "detect",
    "labels",
    "reference",
    "report",
    "results",
    "rules",
    "serve",
    "sidecar",
    "webhook",
)


# What the detectors and file commands import, and the sidecar image leaves out.
_ANALYSIS_PACKAGES = frozenset({"numpy", "pandas", "scipy", "pyarrow"})


class _Group(click.Group):
    """Maps modeltap errors to exit codes for every command below it.

    A command's module is imported only when that command is looked up: `monitor sidecar`
    runs in every model pod, and must not pay at start for what the other commands import.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS and cmd_name not in self.commands:
            module = importlib.import_module(f"monitor.commands.{cmd_name}")
            self.add_command(accept_config(cast(click.Command, getattr(module, cmd_name))))
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModeltapError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)
        except ModuleNotFoundError as error:
            if error.name is None or error.name.split(".")[0] not in _ANALYSIS_PACKAGES:
                raise
            # The sidecar image carries what capture needs, and no numpy, scipy or pandas.
            click.echo(
                f"error: this installation has no {error.name.split('.')[0]}, which "
                f"`monitor {ctx.invoked_subcommand}` needs; use the full modeltap image, or "
                "pip install modeltap (the sidecar image only captures)",
                err=True,
            )
            ctx.exit(2)


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


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="monitor"))
