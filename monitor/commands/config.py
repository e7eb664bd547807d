"""``monitor config``: validate and show configuration."""

from __future__ import annotations

from pathlib import Path

import click
import yaml
from rich.console import Console

from monitor.commands import Settings, pass_settings
from monitor.configload import load_config
from monitor.store.engine import redact


@click.group()
def config() -> None:
    """Validate and show configuration."""


@config.command("check")
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--show", is_flag=True, help="Print the effective configuration (secrets masked).")
@pass_settings
def check(settings: Settings, file: Path | None, show: bool) -> None:
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
