"""`monitor backfill` and `monitor report` through CliRunner: errors, workers, outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from modeltap.schema import DetectorResult
from modeltap.store import SqlStore
from monitor.cli import cli
from tests.detectors.test_runner import at
from tests.monitor.commands.test_detect import prepare

RANGE = ["--start", at(0).isoformat(), "--end", at(4).isoformat()]


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["--config", str(config), "backfill", "--model", "churn", *args]
    )
    return result.exit_code, result.output


def stored(config: Path) -> int:
    store = SqlStore.open(f"sqlite:///{config.parent / 'm.db'}")
    try:
        return len(store.results_between("churn", at(-100), at(100)))
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", at(1).isoformat(), "--end", at(1.5).isoformat()], "no complete"),
        (["--start", "yesterday", "--end", at(1).isoformat()], "not an ISO 8601 time"),
        ([*RANGE, "--window", "soon"], "not a duration"),
        ([*RANGE, "--source", "missing.parquet"], "does not exist"),
        ([*RANGE, "--source", "{bad}"], "no column 'tenure', 'plan'"),
        ([*RANGE, "--reference", "{bad}"], "does not match model 'churn'"),
        ([*RANGE, "--labels", "{bad}"], "--labels joins a --source file"),
    ],
)
def test_bad_input_is_one_sentence_exit_2_and_nothing_written(
    tmp_path: Path, args: list[str], message: str
) -> None:
    config = prepare(tmp_path)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"ts": [at(0).isoformat()], "age": [1.0], "prediction": [1]}).to_csv(
        bad, index=False
    )
    code, output = invoke(config, *[a.replace("{bad}", str(bad)) for a in args])
    assert code == 2, output
    assert message in output
    assert output.count("\n") == 1
    assert stored(config) == 0


def test_an_unknown_model_is_exit_2(tmp_path: Path) -> None:
    config = prepare(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(config), "backfill", "--model", "x", *RANGE])
    assert result.exit_code == 2
    assert "model 'x' is not configured" in result.output


def test_dry_run_writes_nothing_and_a_run_writes_report_and_openmetrics(tmp_path: Path) -> None:
    config = prepare(tmp_path)
    code, output = invoke(config, *RANGE, "--dry-run")
    assert code == 0, output
    assert "4 windows" in output
    assert "4 to compute" in output
    assert "nothing written" in output
    assert stored(config) == 0
    report, metrics = tmp_path / "r.html", tmp_path / "m.om"
    code, output = invoke(config, *RANGE, "--report", str(report), "--openmetrics", str(metrics))
    assert code == 0, output
    assert "4 windows computed, 0 already done" in output
    rows = stored(config)
    assert rows > 100
    assert report.read_text().startswith("<!doctype html>")
    assert metrics.read_text().endswith("# EOF\n")
    code, output = invoke(config, *RANGE)
    assert "0 windows computed, 4 already done" in output
    assert stored(config) == rows


def test_workers_give_the_same_rows_as_one_process(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    rows = []
    for directory, workers in ((one, "1"), (two, "2")):
        config = prepare(directory)
        code, output = invoke(config, *RANGE, "--workers", workers)
        assert code == 0, output
        store = SqlStore.open(f"sqlite:///{directory / 'm.db'}")
        rows.append(
            sorted(
                repr(sorted((k, v) for k, v in vars_of(r).items()))
                for r in store.results_between("churn", at(0), at(4))
            )
        )
        store.close()
    assert rows[0] == rows[1]
    assert len(rows[0]) > 100


def vars_of(result: DetectorResult) -> dict[str, object]:
    return {name: getattr(result, name) for name in result.__slots__}


def test_report_command_writes_every_section(tmp_path: Path) -> None:
    config = prepare(tmp_path)
    assert invoke(config, *RANGE)[0] == 0
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli, ["--config", str(config), "report", "--model", "churn", *RANGE, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    for section in ("summary", "drift", "distributions", "quality", "performance", "serving", "ab"):
        assert f'<section id="{section}">' in html
    assert "<script" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
