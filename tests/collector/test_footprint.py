"""The capture path imports only what capture uses (issue 14: the sidecar is in every pod).

Each import is checked in a fresh interpreter, since this test process has loaded
everything already. bench/sidecar_footprint.py measures what this saves.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from modeltap.store import current_revision, head_revision, make_engine
from tests.collector.conftest import events_in

STATISTICS = ["numpy", "pandas", "scipy"]
DATABASE = ["sqlalchemy", "alembic", "psycopg"]


def loaded_after(code: str, watched: list[str]) -> list[str]:
    """Which of ``watched`` top-level modules a fresh interpreter has loaded after ``code``."""
    report = f"print(json.dumps(sorted(m for m in {watched!r} if m in sys.modules)))"
    probe = f"{code}\nimport sys, json\n{report}"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


def test_the_probe_sees_a_module_that_is_loaded() -> None:
    # Without this, a probe that always answered "nothing" would pass every test below.
    assert loaded_after("import numpy", STATISTICS) == ["numpy"]


def test_importing_the_sidecar_loads_no_statistics_and_no_database() -> None:
    assert loaded_after("import collector.sidecar", STATISTICS + DATABASE) == []


def test_a_kafka_sink_loads_kafka_python_with_its_first_batch_and_never_the_database() -> None:
    opened = (
        "from collector.sinks import open_sink\n"
        "from modeltap.config import KafkaConfig\n"
        "sink = open_sink('kafka://127.0.0.1:9/t', KafkaConfig(), timeout=1.0, source='s')"
    )
    assert loaded_after(opened, [*STATISTICS, *DATABASE, "kafka"]) == []
    # A first batch to a broker that is not there: the write fails (and would be spooled),
    # but kafka-python was loaded to try it.
    written = (
        f"{opened}\nimport asyncio\nfrom modeltap.errors import TransportError\n"
        "try:\n    asyncio.run(sink.write([]))\nexcept TransportError:\n    pass\n"
    )
    assert loaded_after(written, [*STATISTICS, *DATABASE, "kafka"]) == ["kafka"]


def test_a_sqlite_sink_writes_without_statistics_the_driver_or_alembic(tmp_path: Path) -> None:
    # The store (SQLAlchemy) is loaded with the first write; pandas and numpy, which only
    # the detectors' reads use, and psycopg are not. The new database is created by a child
    # process, so Alembic never stays in the sidecar's memory.
    database = tmp_path / "c.db"
    code = (
        "import asyncio\n"
        "from collector.sinks import open_sink\n"
        "from modeltap.config import KafkaConfig\n"
        f"sink = open_sink('sqlite:///{database}', KafkaConfig(), timeout=5.0,"
        " source='s')\n"
        "import sys; assert 'sqlalchemy' not in sys.modules, 'the store loaded before a write'\n"
        "asyncio.run(sink.write([]))\n"
        "asyncio.run(sink.close())"
    )
    assert loaded_after(code, STATISTICS + DATABASE) == ["sqlalchemy"]
    engine = make_engine(f"sqlite:///{database}")
    assert current_revision(engine) == head_revision()
    engine.dispose()
    # Opened again, a database at the head is written without any child process.
    assert loaded_after(code, STATISTICS + DATABASE) == ["sqlalchemy"]


def test_the_command_line_loads_only_the_command_that_runs() -> None:
    code = "from monitor.cli import cli\ncli.get_command(None, 'sidecar')"
    assert loaded_after(code, [*STATISTICS, *DATABASE, "rich", "aiohttp"]) == []


def test_every_command_module_is_listed_and_named_after_its_command() -> None:
    import click

    from monitor import cli as cli_module

    folder = Path(cli_module.__file__).parent / "commands"
    modules = sorted(path.stem for path in folder.glob("*.py") if path.stem != "__init__")
    assert sorted(cli_module._COMMANDS) == modules
    context = click.Context(cli_module.cli)
    for name in modules:
        command = cli_module.cli.get_command(context, name)
        assert command is not None
        assert command.name == name


def test_a_running_sidecar_captures_without_mapping_numpy_pandas_or_scipy(
    sidecar_factory: Any, tmp_path: Path
) -> None:
    sidecar = sidecar_factory()
    request = urllib.request.Request(
        f"{sidecar.url}/v1/models/iris:predict",
        data=json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": "footprint-1"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    deadline = time.monotonic() + 20
    # Two calls: the start-up check of /healthz through the proxy, and this one.
    while sidecar.metric("modeltap_capture_sent_events_total") < 2:
        assert time.monotonic() < deadline, sidecar.log.read_text()[-2000:]
        time.sleep(0.05)
    # The request went through the proxy, the capture pipeline and the SQLite sink: all
    # of the capture path is loaded now, and none of the statistics stack.
    assert sidecar.process is not None
    maps = Path(f"/proc/{sidecar.process.pid}/maps").read_text()
    assert "/sqlalchemy/" in maps  # the probe sees what is loaded (its C extensions)
    assert [name for name in STATISTICS if f"/{name}/" in maps] == []
    assert sidecar.stop() == 0
    stored = events_in(tmp_path / "capture.db")
    assert "footprint-1" in [row["request_id"] for row in stored["requests"]]
