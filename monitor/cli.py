"""The ``monitor`` command line: parses config once and wires the parts together.

Errors from anywhere below arrive as :class:`~monitor.errors.ModeltapError` and are turned
into a one-line message and an exit code here, and only here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console

from monitor import __version__
from monitor.config import MonitorConfig
from monitor.configload import CONFIG_ENV, load_config
from monitor.errors import ModeltapError
from monitor.store.engine import redact

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


class Settings:
    """What every command gets: the config path and the environment, parsed on first use."""

    def __init__(self, path: Path | None, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env
        self._config: MonitorConfig | None = None

    def config(self, overrides: Mapping[str, Any] | None = None) -> MonitorConfig:
        if self._config is None or overrides:
            self._config = load_config(self.path, self.env, overrides)
        return self._config


pass_settings = click.make_pass_decorator(Settings)


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


# -- config -------------------------------------------------------------------------------


@cli.group(cls=_Group)
def config() -> None:
    """Validate and show configuration."""


@config.command("check")
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--show", is_flag=True, help="Print the effective configuration (secrets masked).")
@pass_settings
def config_check(settings: Settings, file: Path | None, show: bool) -> None:
    """Validate FILE (or --config / MONITOR_CONFIG) with environment overrides applied.

    Exits 0 when valid; 2 with one line per problem, naming the key, when not.

    \b
    Example:
      monitor config check config.example.yaml
    """
    path = file or settings.path
    loaded = load_config(path, settings.env)
    console = Console(soft_wrap=True)
    if show:
        console.print(yaml.safe_dump(loaded.model_dump(mode="json"), sort_keys=False), end="")
        return
    source = str(path) if path else "defaults and environment"
    console.print(
        f"[green]ok[/]: {source} is valid: {len(loaded.models)} model(s), "
        f"storage {redact(loaded.storage.url)}, sink {redact(loaded.sink_url)}"
    )


# -- db -----------------------------------------------------------------------------------


@cli.group(cls=_Group)
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.option("--url", help="Database URL (default: storage.url from the configuration).")
@pass_settings
def db_upgrade(settings: Settings, url: str | None) -> None:
    """Create or migrate the tables to this version's schema (safe to run repeatedly)."""
    from monitor.store.engine import make_engine  # noqa: PLC0415 - only this command needs it
    from monitor.store.migrate import upgrade  # noqa: PLC0415

    target = url or settings.config().storage.url
    engine = make_engine(target)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"{redact(target)} is already at revision {after}")
    else:
        click.echo(f"{redact(target)} upgraded from {before or 'empty'} to revision {after}")


# -- demo ---------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".modeltap-demo"),
    show_default=True,
    help="Where the demo keeps its SQLite database.",
)
@click.option(
    "--hours",
    type=click.IntRange(1, 48),
    default=3,
    show_default=True,
    help="Hours of synthetic traffic to generate.",
)
@click.option(
    "--rps",
    type=click.FloatRange(0.1, 200),
    default=5.0,
    show_default=True,
    help="Requests per second in the synthetic traffic.",
)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(directory: Path, hours: int, rps: float, seed: int) -> None:
    """Run modeltap end to end on the embedded default (SQLite, no Kafka)."""
    from monitor.demo import run_demo  # noqa: PLC0415 - pulls in numpy and pandas

    run_demo(directory, hours=hours, rps=rps, seed=seed, console=Console(soft_wrap=True))


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="monitor"))
