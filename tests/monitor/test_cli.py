"""The `monitor` command line, driven in-process with click's CliRunner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltap.store import head_revision
from monitor.cli import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_help_lists_only_working_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = [
        line.split()[0]
        for line in result.output.split("Commands:")[1].splitlines()
        if line.startswith("  ") and line.strip()
    ]
    assert listed == [
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
    ]
    for name in listed:
        assert runner.invoke(cli, [name, "--help"]).exit_code == 0


def test_config_check_accepts_the_example(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["config", "check", str(ROOT / "config.example.yaml")])
    assert result.exit_code == 0, result.output
    assert "is valid: 1 model(s)" in result.output


def test_config_check_rejects_bad_files_with_exit_2_and_no_traceback(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("detectors: {window: soon}\n")
    result = runner.invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 2
    assert "detectors.window: expected a duration" in result.output
    assert "Traceback" not in result.output


def test_config_check_show_masks_secrets(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["config", "check", "--show"], env={"MONITOR_SERVE__LABELS_TOKEN": "hunter2"}
    )
    assert result.exit_code == 0
    assert "hunter2" not in result.output
    assert "labels_token: '**********'" in result.output


def test_config_check_show_masks_passwords_inside_urls(runner: CliRunner) -> None:
    env = {
        "MONITOR_STORAGE__URL": "postgresql+psycopg://app:s3cret@db:5432/modeltap",
        "MONITOR_SINK__URL": "postgresql+psycopg://writer:t0ps3cret@db/modeltap",
    }
    result = runner.invoke(cli, ["config", "check", "--show"], env=env)
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert "postgresql+psycopg://app:***@db:5432/modeltap" in result.output
    assert "writer:***@db" in result.output


def test_global_config_option_is_used_by_commands(runner: CliRunner, tmp_path: Path) -> None:
    database = tmp_path / "via-config.db"
    config = tmp_path / "c.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{database}'}}\n")
    result = runner.invoke(cli, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert database.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["db", "upgrade", "--config", "{config}"],
        ["db", "--config", "{config}", "upgrade"],
        ["--config", "{other}", "db", "upgrade", "--config", "{config}"],
    ],
    ids=["after the command", "after the group", "the command's wins"],
)
def test_config_is_accepted_after_the_command_too(
    runner: CliRunner, tmp_path: Path, args: list[str]
) -> None:
    database = tmp_path / "here.db"
    config, other = tmp_path / "c.yaml", tmp_path / "other.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{database}'}}\n")
    other.write_text(f"storage: {{url: 'sqlite:///{tmp_path / 'not-here.db'}'}}\n")
    filled = [arg.format(config=config, other=other) for arg in args]
    result = runner.invoke(cli, filled)
    assert result.exit_code == 0, result.output
    assert database.exists()
    assert not (tmp_path / "not-here.db").exists()


def test_db_upgrade_creates_then_reports_current(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    first = runner.invoke(cli, ["db", "upgrade", "--url", url])
    assert first.exit_code == 0, first.output
    assert f"upgraded from empty to revision {head_revision()}" in first.output
    again = runner.invoke(cli, ["db", "upgrade", "--url", url])
    assert f"already at revision {head_revision()}" in again.output


def test_db_upgrade_on_the_real_postgres(runner: CliRunner, postgres_database: str) -> None:
    result = runner.invoke(cli, ["db", "upgrade"], env={"MONITOR_STORAGE__URL": postgres_database})
    assert result.exit_code == 0, result.output
    assert "upgraded from empty" in result.output


def test_an_unreachable_database_exits_3_with_a_sentence(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["db", "upgrade", "--url", "postgresql+psycopg://u:pw@127.0.0.1:1/x"]
    )
    assert result.exit_code == 3
    assert result.output.startswith("error: cannot reach the database at ")
    assert ":pw@" not in result.output


def test_a_sqlite_path_in_a_missing_directory_is_a_usage_error(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(cli, ["db", "upgrade", "--url", f"sqlite:///{tmp_path}/no/such/m.db"])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_demo_runs_end_to_end(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli,
        [
            "demo",
            "--dir",
            str(tmp_path),
            "--hours",
            "2",
            "--rps",
            "0.5",
            "--live-seconds",
            "4",
            "--live-rps",
            "20",
        ],
    )
    # The processes' logs go with a failure: on CI they are gone once the run ends.
    logs = "".join(
        f"\n--- {log.name} ---\n" + "\n".join(log.read_text().splitlines()[-30:])
        for log in (tmp_path / "sidecar.log", tmp_path / "model.log")
        if log.exists()
    )
    assert result.exit_code == 0, result.output + logs
    assert "ignored as duplicates" in result.output
    assert (tmp_path / "demo.db").exists()
    assert "churn: history per 30 minutes" in result.output
    assert (
        "live: 80 requests sent, 80 answered 200 by the model through the sidecar; "
        "captured 80 requests" in " ".join(result.output.split())
    )
    assert "sidecar exit code 0 after SIGTERM" in " ".join(result.output.split())
    # The detectors run once on the history; the planted drift (older customers) is flagged.
    assert "ran every detector once" in result.output
    assert "churn/drift: ok" in result.output
    # It ends on the report, written from the results it computed.
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")
    assert "report.html" in result.output
    lines = result.output.splitlines()
    age = [line for line in lines if "feature_drift" in line and " age " in line]
    assert age
    assert all("ALERT" in line for line in age)
    # Late labels show what the drift did to the model: accuracy fell below its floor.
    accuracy = [line for line in lines if "│ accuracy " in line]
    assert accuracy
    assert all("0.6" in line and "ALERT" in line for line in accuracy)
    # ...and the exporter shows it the way Prometheus will scrape it.
    drifted = 'modeltap_feature_drifted{feature="age",model="churn",version="v1"} 1.0'
    assert drifted in [line.strip() for line in lines]


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "modeltap, version" in result.output


def test_help_imports_none_of_what_the_commands_need(tmp_path: Path) -> None:
    """`monitor --help` lists every command without loading pydantic, the store or numpy."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from monitor.cli import cli\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0\n"
        "heavy = {'pydantic', 'sqlalchemy', 'pandas', 'numpy', 'scipy', 'yaml', 'aiohttp'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def test_a_command_the_sidecar_image_cannot_run_says_which_image_can(tmp_path: Path) -> None:
    # Hidden as the sidecar image leaves them out: `check` needs them, and says so.
    code = (
        "import sys\n"
        "sys.modules.update(dict.fromkeys(['numpy', 'pandas', 'scipy']))\n"
        "from click.testing import CliRunner\n"
        "from monitor.cli import cli\n"
        "args = ['check', '--reference', 'a.csv', '--current', 'a.csv']\n"
        "result = CliRunner().invoke(cli, args)\n"
        "print(result.exit_code)\n"
        "print(result.output)\n"
    )
    (tmp_path / "a.csv").write_text("x\n1\n")
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    code_line, *rest = done.stdout.splitlines()
    assert code_line == "2"
    assert "this installation has no pandas, which `monitor check` needs" in "\n".join(rest)
    assert "Traceback" not in done.stdout
