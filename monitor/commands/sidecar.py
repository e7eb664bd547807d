"""``monitor sidecar``: the capture proxy (or log tail) next to a model server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from monitor.commands import Settings, pass_settings


@click.command()
@click.option("--upstream", help="Model server URL [sidecar.upstream, http://127.0.0.1:8080].")
@click.option("--listen", help="Address callers use [sidecar.listen, 0.0.0.0:8000].")
@click.option("--metrics-listen", help="Address of /metrics, /healthz, /readyz [0.0.0.0:9108].")
@click.option("--model", help="Model name when the request path does not name one.")
@click.option("--model-version", help="Model version when the path does not name one.")
@click.option("--sink", help="Where events go: sqlite:///…, postgresql+psycopg://… [storage.url].")
@click.option(
    "--spool-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where batches wait while the sink is down [sidecar.spool_dir].",
)
@click.option(
    "--tail",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Follow this JSON-lines file instead of proxying HTTP.",
)
@pass_settings
def sidecar(settings: Settings, /, sink: str | None, **flags: Any) -> None:
    """Capture every request and prediction of a model server, without touching it.

    Every flag can also come from the config file or the environment
    (MONITOR_SIDECAR__UPSTREAM, …). The model's answers never wait on monitoring: events
    go through a bounded queue, and to a disk spool while the sink is down.

    \b
    Example:
      monitor sidecar --upstream http://127.0.0.1:8080 --model churn \\
        --sink sqlite:///modeltap.db
    """
    overrides: dict[str, Any] = {
        "sidecar": {key: value for key, value in flags.items() if value is not None}
    }
    if sink is not None:
        overrides["sink"] = {"url": sink}
    config = settings.config(overrides)
    if config.sidecar.tail is not None:
        from collector.tail import main as tail_main  # noqa: PLC0415 - one mode or the other

        raise SystemExit(tail_main(config))
    from collector.sidecar import main  # noqa: PLC0415 - keeps `monitor --help` fast

    raise SystemExit(main(config))
