"""`monitor db purge`: retention by hand, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltap.schema import EventBatch
from modeltap.store import SqlStore
from monitor.cli import cli
from tests.modeltap.store.factories import request


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.db'}"
    made: str = request.getfixturevalue("postgres_database")
    return made


def test_purge_removes_what_is_older_than_asked(url: str) -> None:
    now = datetime.now(UTC)
    store = SqlStore.open(url, migrate=True)
    store.write(
        EventBatch(
            [
                request(1, ts=now - timedelta(days=40)),
                request(2, ts=now - timedelta(days=2)),
                request(3, ts=now - timedelta(minutes=5)),
            ]
        )
    )
    store.close()
    result = CliRunner().invoke(cli, ["db", "purge", "--older-than", "1d", "--url", url, "--yes"])
    assert result.exit_code == 0, result.output
    assert "2 requests" in result.output
    store = SqlStore.open(url)
    left = store.read_requests("churn", now - timedelta(days=60), now + timedelta(days=1))
    store.close()
    assert left["request_id"].tolist() == ["req-3"]


def test_a_bad_age_is_a_usage_error(url: str) -> None:
    result = CliRunner().invoke(cli, ["db", "purge", "--older-than", "soon", "--url", url])
    assert result.exit_code == 2
    assert "--older-than: expected a duration" in result.output


def three_requests(url: str) -> datetime:
    now = datetime.now(UTC)
    store = SqlStore.open(url, migrate=True)
    store.write(EventBatch([request(n, ts=now - timedelta(days=n)) for n in (1, 2, 3)]))
    store.close()
    return now


def left(url: str, now: datetime) -> int:
    store = SqlStore.open(url)
    frame = store.read_requests("churn", now - timedelta(days=60), now + timedelta(days=1))
    store.close()
    return len(frame)


def test_purge_asks_first_and_a_dry_run_deletes_nothing(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = three_requests(url)
    args = ["db", "purge", "--older-than", "0s", "--url", url]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2
    assert "pass --yes to do it, or --dry-run to see how much that is" in refused.output
    dry = CliRunner().invoke(cli, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would remove everything before" in dry.output
    assert "3 requests" in dry.output
    assert left(url, now) == 3
    monkeypatch.setattr("monitor.commands.db._interactive", lambda: True)
    declined = CliRunner().invoke(cli, args, input="n\n")
    assert declined.exit_code == 1
    assert "(3 requests" in declined.output
    assert left(url, now) == 3
    accepted = CliRunner().invoke(cli, args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert left(url, now) == 0
