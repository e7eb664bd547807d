"""POST /v1/labels against the real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from collector.ingest import IngestMetrics, LabelsHandler, StoreRunner
from modeltap.schema import EventBatch
from modeltap.store import SqlStore, make_engine
from tests.modeltap.store.factories import T0, events

NOW = datetime(2026, 11, 26, 9, tzinfo=UTC)
REGISTRY = web.AppKey("registry", CollectorRegistry)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'labels.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    return SqlStore.open(url, migrate=True)


async def client_for(store: SqlStore, token: str | None = None) -> TestClient[Any, Any]:
    registry = CollectorRegistry()
    handler = LabelsHandler(
        StoreRunner(store), IngestMetrics(registry), token=token, clock=lambda: NOW
    )
    app = web.Application()
    app.router.add_post("/v1/labels", handler.handle)
    app[REGISTRY] = registry
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(store: SqlStore) -> AsyncIterator[TestClient[Any, Any]]:
    made = await client_for(store)
    yield made
    await made.close()
    store.close()


def labels_of(store: SqlStore) -> list[Any]:
    frame = store.read_predictions("churn", T0, T0 + (NOW - T0), with_labels=True)
    return frame["label"].tolist()


async def test_one_label_or_many_and_corrections_replace(
    client: TestClient[Any, Any], store: SqlStore
) -> None:
    store.write(events(range(3)))
    one = await client.post("/v1/labels", json={"request_id": "req-0", "label": 1})
    assert (one.status, await one.json()) == (200, {"written": 1, "updated": 0, "unmatched": 0})
    many = await client.post(
        "/v1/labels",
        json=[
            {"request_id": "req-1", "row_index": 0, "label": 0, "time": "2026-11-26T08:00:00Z"},
            {"request_id": "req-0", "label": 0},
        ],
    )
    assert (many.status, await many.json()) == (
        200,
        {"written": 1, "updated": 1, "unmatched": 0},
    )
    assert labels_of(store)[:2] == [0, 0]
    empty = await client.post("/v1/labels", json=[])
    assert await empty.json() == {"written": 0, "updated": 0, "unmatched": 0}
    stray = await client.post("/v1/labels", json=[{"request_id": "nobody", "label": 1}])
    assert await stray.json() == {"written": 1, "updated": 0, "unmatched": 1}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"request_id": "r"}, "label: each label needs a 'label' field"),
        ({"label": 1}, "label: each label needs a request_id (with row_index) or an instance_id"),
        (
            {"request_id": "r", "label": 1, "row_index": -1},
            "label.row_index: Input should be greater than or equal to 0",
        ),
        (
            {"request_id": "r", "label": 1, "colour": "red"},
            "label.colour: unknown field; allowed: request_id, row_index, instance_id, label",
        ),
        ({"request_id": "r", "label": {"a": 1}}, "label must be a single value"),
        ({"request_id": "r", "label": 1, "time": "2026-11-26T08:00:00"}, "time needs a timezone"),
        ({"request_id": "r", "label": 1, "time": "yesterday"}, "label.time: Input should be"),
        (
            [{"request_id": "ok", "label": 1}, {"request_id": "r"}],
            "labels[1]: each label needs a 'label' field",
        ),
        # Once a 500: past the stored 32-bit integer.
        ({"request_id": "r", "label": 1, "row_index": 1e20}, "label.row_index: "),
        ({"request_id": "r", "label": 1, "row_index": 2**40}, "less than or equal to 2147483647"),
        ({"request_id": "r", "label": 1, "time": "9999-12-31T23:59:59Z"}, "between 1970 and"),
    ],
)
async def test_schema_errors_are_422_naming_the_field_and_write_nothing(
    client: TestClient[Any, Any],
    store: SqlStore,
    body: Any,
    message: str,
) -> None:
    response = await client.post("/v1/labels", json=body)
    assert response.status == 422
    assert message in (await response.json())["error"]
    assert store.write(EventBatch()).labels_written == 0
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM labels").scalar() == 0


async def test_a_body_that_is_not_json_is_a_400(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/v1/labels", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["error"].startswith("the body is not JSON")


async def test_a_configured_token_is_required(store: SqlStore) -> None:
    client = await client_for(store, token="s3cret")
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            response = await client.post(
                "/v1/labels", json={"request_id": "r", "label": 1}, headers=headers
            )
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="modeltap"'
            assert "s3cret" not in await response.text()
        ok = await client.post(
            "/v1/labels",
            json={"request_id": "r", "label": 1},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert ok.status == 200
        assert isinstance(client.server, TestServer)
        registry = client.server.app[REGISTRY]
        assert registry.get_sample_value("modeltap_serve_rejected_requests_total") == 3
    finally:
        await client.close()
        store.close()


async def test_a_database_that_is_down_is_a_503_not_a_traceback() -> None:
    dead = SqlStore(make_engine("postgresql+psycopg://u@127.0.0.1:1/x"))
    client = await client_for(dead)
    try:
        response = await client.post("/v1/labels", json={"request_id": "r", "label": 1})
        assert response.status == 503
        assert "cannot reach the database" in (await response.json())["error"]
    finally:
        await client.close()


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
async def test_labels_that_are_no_number_are_refused_not_stored_as_null(
    client: TestClient[Any, Any], store: SqlStore, token: str
) -> None:
    body = f'{{"request_id": "r", "label": {token}}}'.encode()
    response = await client.post(
        "/v1/labels", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 422
    assert "finite number" in (await response.json())["error"]
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM labels").scalar() == 0


async def test_deep_nesting_is_a_400_not_a_traceback(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.post(
        "/v1/labels", data=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert "nests too deeply" in (await response.json())["error"]
    assert not [record for record in caplog.records if record.exc_info]


async def test_odd_request_ids_join_the_predictions_captured_under_them(
    client: TestClient[Any, Any], store: SqlStore
) -> None:
    """A too-long id, or one with a NUL, is stored as the same stand-in on both sides."""
    from dataclasses import replace

    from collector.capture import Capturer
    from tests.collector.fakes import exchange

    odd = ["a" * 300, "nul\x00id"]
    for n, request_id in enumerate(odd):
        captured = exchange(n, body=b'{"instances": [[1]]}', answer=b'{"predictions": [1]}')
        captured = replace(captured, request_id=request_id, model="churn", started=T0)
        store.write(EventBatch(*_split(Capturer({}).to_event(captured))))
    response = await client.post(
        "/v1/labels", json=[{"request_id": rid, "label": n} for n, rid in enumerate(odd)]
    )
    assert response.status == 200, await response.text()
    assert sorted(labels_of(store)) == [0, 1]


def _split(event: Any) -> tuple[list[Any], list[Any]]:
    return [event.request], list(event.predictions)
