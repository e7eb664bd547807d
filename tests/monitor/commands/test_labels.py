"""`monitor labels import` for CSV, JSON lines and Parquet, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from modeltap.store import SqlStore
from modeltap.store.tables import labels
from monitor.cli import cli
from tests.modeltap.store.factories import T0, events


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        made = f"sqlite:///{tmp_path / 'labels.db'}"
    else:
        made = request.getfixturevalue("postgres_database")
    SqlStore.open(made, migrate=True).close()
    return made


def run(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["labels", "import", *args], env={"MONITOR_STORAGE__URL": url})
    return result.exit_code, result.output


def stored_labels(url: str) -> dict[str, object]:
    store = SqlStore.open(url)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(select(labels.c.label_key, labels.c.value)).all()
    finally:
        store.close()
    return {str(key): value for key, value in rows}


def test_csv_with_numbers_booleans_and_times(url: str, tmp_path: Path) -> None:
    path = tmp_path / "truth.csv"
    path.write_text(
        "request_id,row_index,label,time\n"
        "req-1,0,1,2026-11-25T14:00:00Z\n"
        "req-1,1,0.5,\n"
        "req-2,,true,\n"
        "req-3,,churned,\n"
    )
    code, output = run(url, str(path))
    assert code == 0, output
    assert "truth.csv: 4 written, 0 updated, 0 rejected; 4 match no stored prediction" in output
    assert stored_labels(url) == {
        "r:req-1:0": 1,
        "r:req-1:1": 0.5,
        "r:req-2:0": True,
        "r:req-3:0": "churned",
    }
    again, output = run(url, str(path))
    assert again == 0
    assert "0 written, 4 updated, 0 rejected" in output


def test_jsonl_and_parquet_with_instance_ids(url: str, tmp_path: Path) -> None:
    lines = tmp_path / "truth.jsonl"
    lines.write_text('{"instance_id": "cust-1", "label": 1}\n\n{"instance_id": 7, "label": 0}\n')
    assert run(url, str(lines))[0] == 0
    table = pa.table(
        {"request_id": ["a", "b"], "label": [1, 0], "time": pa.array([T0, T0], pa.timestamp("us"))}
    )
    pq.write_table(table, tmp_path / "truth.parquet")
    code, output = run(url, str(tmp_path / "truth.parquet"))
    assert code == 0, output
    assert stored_labels(url) == {"i:cust-1": 1, "i:7": 0, "r:a:0": 1, "r:b:0": 0}


def test_a_model_label_field_is_honoured(url: str, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"storage: {{url: '{url}'}}\nmodels:\n  - name: churn\n"
        "    task: classification\n    payload: {label_field: churned}\n"
    )
    path = tmp_path / "truth.jsonl"
    path.write_text('{"request_id": "r1", "churned": 1}\n')
    result = CliRunner().invoke(
        cli, ["--config", str(config), "labels", "import", str(path), "--model", "churn"]
    )
    assert result.exit_code == 0, result.output
    assert stored_labels(url) == {"r:r1:0": 1}


def test_any_invalid_row_means_nothing_is_stored(url: str, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"request_id": "ok", "label": 1}\n{"label": 1}\n{broken\n'
        '{"request_id": "x", "label": 1, "row_index": -2}\n'
    )
    code, output = run(url, str(path))
    assert code == 2
    assert "3 of 4 row(s) in mixed.jsonl are invalid, so nothing was stored" in output
    assert "row 2: each label needs a request_id" in output
    assert "row 3: not JSON" in output
    assert "row 4.row_index: Input should be greater than or equal to 0" in output
    assert stored_labels(url) == {}

    code, output = run(url, str(path), "--skip-invalid")
    assert code == 1
    assert "mixed.jsonl: 1 written, 0 updated, 3 rejected" in output
    assert "3 invalid row(s) were skipped" in output
    assert stored_labels(url) == {"r:ok:0": 1}


def test_unusable_files_are_usage_errors(url: str, tmp_path: Path) -> None:
    (tmp_path / "labels.xlsx").write_bytes(b"PK")
    code, output = run(url, str(tmp_path / "labels.xlsx"))
    assert code == 2
    assert "use a .csv, .tsv, .jsonl, .json or .parquet file" in output
    code, output = run(url, str(tmp_path / "absent.csv"))
    assert (code, "does not exist" in output) == (2, True)


def test_imported_labels_join_their_predictions(url: str, tmp_path: Path) -> None:
    store = SqlStore.open(url)
    store.write(events(range(2)))
    path = tmp_path / "truth.csv"
    path.write_text("request_id,label\nreq-0,1\nreq-1,0\n")
    assert run(url, str(path))[0] == 0
    frame = store.read_predictions("churn", T0, T0.replace(hour=13), with_labels=True)
    store.close()
    assert frame["label"].tolist() == [1, 0]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("truth.tsv", "request_id\tlabel\nreq-0\t1\nreq-1\t0\n"),
        (
            "truth.json",
            '[{"request_id": "req-0", "label": 1}, {"request_id": "req-1", "label": 0}]',
        ),
        (
            "lines.json",
            '{"request_id": "req-0", "label": 1}\n{"request_id": "req-1", "label": 0}\n',
        ),
    ],
)
def test_every_format_monitor_check_reads_imports_too(
    url: str, tmp_path: Path, name: str, text: str
) -> None:
    """One table of file formats: labels take TSV and JSON arrays as `check` does."""
    store = SqlStore.open(url)
    store.write(events(range(2)))
    path = tmp_path / name
    path.write_text(text)
    assert run(url, str(path))[0] == 0
    frame = store.read_predictions("churn", T0, T0.replace(hour=13), with_labels=True)
    store.close()
    assert frame["label"].tolist() == [1, 0]


def test_labels_that_match_no_prediction_are_counted(url: str, tmp_path: Path) -> None:
    store = SqlStore.open(url)
    store.write(events(range(2)))
    store.close()
    path = tmp_path / "truth.csv"
    path.write_text("request_id,label\nreq-0,1\nreq-1,0\nreq-9,1\n")
    code, output = run(url, str(path))
    assert code == 0, output
    assert "3 written, 0 updated, 0 rejected; 1 match no stored prediction yet" in output
    assert "note: 1 of 3 label(s) name a request_id/instance_id no stored prediction has" in (
        output
    )


def test_a_model_not_in_the_configuration_is_refused(url: str, tmp_path: Path) -> None:
    path = tmp_path / "truth.csv"
    path.write_text("request_id,label\nreq-0,1\n")
    code, output = run(url, str(path), "--model", "nosuch")
    assert code == 2
    assert "model 'nosuch' is not configured (configured: none)" in output
    assert stored_labels(url) == {}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("truth.parquet", b"request_id,label\nreq-0,1\n", "is not readable as parquet"),
        ("empty.csv", b"", "holds no label rows; nothing was stored"),
        ("header.csv", b"request_id,label\n", "holds no label rows"),
        ("latin.csv", b"request_id,label\nr\xe9q,1\n", "is not readable as csv"),
    ],
)
def test_files_that_hold_no_labels_exit_2_without_a_traceback(
    url: str, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, output = run(url, str(path))
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output
    assert stored_labels(url) == {}
