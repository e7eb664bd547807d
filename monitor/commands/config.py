"""``monitor config``: validate and show configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from rich.console import Console

from modeltap.configload import load_config
from monitor.commands import Settings, pass_settings


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
    import yaml  # noqa: PLC0415

    from modeltap.store import redact  # noqa: PLC0415 - keep `monitor --help` fast

    path = file or settings.path
    loaded = load_config(path, settings.env)
    console = Console(soft_wrap=True)
    if show:
        shown = masked(loaded.model_dump(mode="json"))
        console.print(yaml.safe_dump(shown, sort_keys=False), end="")
        return
    source = str(path) if path else "defaults and environment"
    console.print(
        f"[green]ok[/]: {source} is valid: {len(loaded.models)} model(s), "
        f"storage {redact(loaded.storage.url)}, sink {redact(loaded.sink_url)}"
    )


def masked(value: Any) -> Any:
    """``value`` with the password of every URL in it replaced by ***.

    Secret settings are masked by their type already; a password can also sit inside a
    URL (``storage.url``, ``sink.url``, ``sidecar.upstream``), which is a plain string.

    >>> masked({"storage": {"url": "postgresql+psycopg://app:s3cret@db:5432/m"}})
    {'storage': {'url': 'postgresql+psycopg://app:***@db:5432/m'}}
    """
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    if isinstance(value, str) and "://" in value and "@" in value:
        try:
            parts = urlsplit(value)
            password = parts.password
        except ValueError:
            return value
        if password:
            netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
            return urlunsplit(parts._replace(netloc=netloc))
    return value
