"""``monitor`` sub-commands, one module per area; ``monitor.cli`` assembles them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modeltap.configload import load_config

if TYPE_CHECKING:
    from modeltap.config import MonitorConfig
    from modeltap.store import SqlStore


class Settings:
    """What every command gets: the config path and the environment, parsed on first use."""

    def __init__(self, path: Path | None, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env
        self._config: MonitorConfig | None = None

    def use(self, path: Path) -> None:
        """Read the configuration from ``path`` instead (a command's own ``--config``)."""
        self.path = path
        self._config = None

    def config(self, overrides: Mapping[str, Any] | None = None) -> MonitorConfig:
        """The configuration; ``overrides`` (command-line flags) rank above everything."""
        if overrides:
            return load_config(self.path, self.env, overrides)
        if self._config is None:
            self._config = load_config(self.path, self.env)
        return self._config


pass_settings = click.make_pass_decorator(Settings)


def _use_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        settings = ctx.find_object(Settings)
        if settings is not None:
            settings.use(value)


def accept_config(command: click.Command) -> click.Command:
    """Give ``command`` (and every sub-command) the top-level ``--config`` too, so
    ``monitor detect --config F`` means what ``monitor --config F detect`` does."""
    if not any(param.name == "config_path" for param in command.params):
        command.params.append(
            click.Option(
                ["--config", "config_path"],
                type=click.Path(path_type=Path, dir_okay=False),
                expose_value=False,
                is_eager=True,
                callback=_use_config,
                help="YAML configuration file (also accepted before the command).",
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_config(sub)
    return command


def open_store(config: MonitorConfig, *, connections: int = 0) -> SqlStore:
    """The configured store, pooling at least ``connections``; SQLite is upgraded on the way."""
    from modeltap.store import open_store as open_url  # noqa: PLC0415 - SQLAlchemy off `--help`

    url = config.storage.url
    pool_size = max(config.storage.pool_size, connections)
    return open_url(url, pool_size=pool_size)
