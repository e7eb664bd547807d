"""``monitor demo``: the whole product on the embedded default, in one command."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console


@click.command()
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
    default=3.0,
    show_default=True,
    help="Requests per second in the synthetic traffic.",
)
@click.option(
    "--live-seconds",
    "--duration",
    "live_seconds",
    type=click.FloatRange(0, 600),
    default=20.0,
    show_default=True,
    help="Seconds of live traffic through a real sidecar (0 skips it).",
)
@click.option(
    "--live-rps",
    type=click.FloatRange(1, 500),
    default=50.0,
    show_default=True,
    help="Requests per second of the live traffic.",
)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(
    *, directory: Path, hours: int, rps: float, live_seconds: float, live_rps: float, seed: int
) -> None:
    """Run modeltap end to end on the embedded default (SQLite, no Kafka).

    Writes hours of history for a churn model through the store, then starts a model
    server and a real `monitor sidecar` in front of it and sends it live traffic, and ends
    on the HTML report of what the detectors found (report.html in --dir). Ctrl-C at any
    point stops the model server and the sidecar and says what was done (exit 130).
    """
    from monitor.demo.history import run_demo  # noqa: PLC0415 - pulls in numpy and pandas
    from monitor.demo.steps import Steps  # noqa: PLC0415

    # Piped output gets rich's 80-column default, too narrow for the summary table.
    width = None if sys.stdout.isatty() else 120
    console = Console(width=width)
    steps = Steps(directory / "demo.db")
    try:
        run_demo(
            directory,
            hours=hours,
            rps=rps,
            seed=seed,
            console=console,
            live_seconds=live_seconds,
            live_rps=live_rps,
            steps=steps,
        )
    except KeyboardInterrupt:
        # By here every child process has been stopped (run_live's finally) and the store
        # closed; what is left to do is say how far it got. 130: killed by SIGINT, by custom.
        console.print(steps.interrupted(), soft_wrap=True, highlight=False, markup=False)
        sys.exit(130)
