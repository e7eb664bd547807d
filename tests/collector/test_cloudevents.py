"""POST /v1/cloudevents: KServe's and MLServer's logger events, paired and stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from collector.capture import Capturer
from collector.cloudevents import CloudEventsHandler
from collector.ingest import IngestMetrics, StoreRunner
from modeltap.config import ModelConfig
from modeltap.store import SqlStore

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
IRIS = ModelConfig.model_validate(
    {
        "name": "sklearn-iris",
        "task": "classification",
        "features": [
            {"name": n, "type": "numerical"}
            for n in ("sepal_length", "sepal_width", "petal_length", "petal_width")
        ],
    }
)
REQUEST = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
RESPONSE = {"predictions": [1, 1]}


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStore:
    url = (
        f"sqlite:///{tmp_path / 'ce.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    return SqlStore.open(url, migrate=True)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def handler_and_client(
    store: SqlStore, clock: Clock
) -> AsyncIterator[tuple[CloudEventsHandler, TestClient[Any, Any]]]:
    handler = CloudEventsHandler(
        StoreRunner(store),
        Capturer({IRIS.name: IRIS}),
        IngestMetrics(CollectorRegistry()),
        clock=clock,
    )
    app = web.Application()
    app.router.add_post("/v1/cloudevents", handler.handle)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield handler, client
    await client.close()
    store.close()


def kserve_headers(kind: str, event_id: str, time: str, **extra: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-type": f"org.kubeflow.serving.inference.{kind}",
        "ce-source": "http://localhost:9081/",
        "ce-id": event_id,
        "ce-time": time,
        "ce-inferenceservicename": "sklearn-iris",
        "ce-namespace": "default",
        "ce-endpoint": "canary",
        "ce-component": "predictor",
        "Content-Type": "application/json",
        **extra,
    }


def stored(store: SqlStore) -> tuple[Any, Any]:
    start, end = NOW - timedelta(days=1), NOW + timedelta(days=1)
    return (
        store.read_requests("sklearn-iris", start, end),
        store.read_predictions("sklearn-iris", start, end, features=["petal_length"]),
    )


@pytest.mark.parametrize("response_first", [False, True])
async def test_kserve_logger_pairs_become_requests_and_rows(
    handler_and_client: tuple[CloudEventsHandler, TestClient[Any, Any]],
    store: SqlStore,
    response_first: bool,
) -> None:
    _, client = handler_and_client
    halves = [
        (kserve_headers("request", "0009174a", "2026-11-25T11:59:59.500Z"), REQUEST),
        (kserve_headers("response", "0009174a", "2026-11-25T11:59:59.525Z"), RESPONSE),
    ]
    if response_first:
        halves.reverse()
    first = await client.post(
        "/v1/cloudevents", data=json.dumps(halves[0][1]), headers=halves[0][0]
    )
    assert (first.status, await first.json()) == (200, {"status": "waiting for the other half"})
    second = await client.post(
        "/v1/cloudevents", data=json.dumps(halves[1][1]), headers=halves[1][0]
    )
    assert (second.status, await second.json()) == (200, {"status": "stored"})
    requests, rows = stored(store)
    assert requests["request_id"].tolist() == ["0009174a"]
    assert requests["version"].tolist() == ["canary"]
    assert requests["latency_ms"].tolist() == pytest.approx([25.0])
    assert requests["capture_note"].tolist() == [None]
    assert rows["petal_length"].tolist() == [4.8, 4.5]
    assert rows["prediction"].tolist() == [1, 1]


async def test_a_logger_retry_is_stored_once(
    handler_and_client: tuple[CloudEventsHandler, TestClient[Any, Any]],
    store: SqlStore,
) -> None:
    _, client = handler_and_client
    for _ in range(2):
        for kind, body in (("request", REQUEST), ("response", RESPONSE)):
            response = await client.post(
                "/v1/cloudevents",
                data=json.dumps(body),
                headers=kserve_headers(kind, "r1", "2026-11-25T12:00Z"),
            )
            assert response.status == 200
    requests, rows = stored(store)
    assert len(requests) == 1
    assert len(rows) == 2


async def test_structured_mode_and_mlserver_events(
    handler_and_client: tuple[CloudEventsHandler, TestClient[Any, Any]],
    store: SqlStore,
) -> None:
    _, client = handler_and_client
    envelope = {
        "specversion": "1.0",
        "type": "org.kubeflow.serving.inference.request",
        "source": "x",
        "id": "s1",
        "inferenceservicename": "sklearn-iris",
        "datacontenttype": "application/json",
        "data": REQUEST,
    }
    response = await client.post(
        "/v1/cloudevents",
        data=json.dumps(envelope),
        headers={"Content-Type": "application/cloudevents+json"},
    )
    assert response.status == 200
    envelope |= {"type": "org.kubeflow.serving.inference.response", "data": RESPONSE}
    response = await client.post(
        "/v1/cloudevents",
        data=json.dumps(envelope),
        headers={"Content-Type": "application/cloudevents+json"},
    )
    assert await response.json() == {"status": "stored"}

    v2_request = {
        "inputs": [
            {"name": "predict", "shape": [1, 4], "datatype": "FP32", "data": [[1.0, 2.0, 3.0, 4.0]]}
        ]
    }
    v2_response = {
        "model_name": "iris_1",
        "outputs": [{"name": "predict", "shape": [1, 1], "datatype": "INT64", "data": [2]}],
    }
    for kind, body in (("request", v2_request), ("response", v2_response)):
        headers = {
            "Ce-Specversion": "0.3",
            "Ce-Type": f"io.seldon.serving.inference.{kind}",
            "Ce-Source": "io.seldon.serving.deployment.mlserver",
            "Ce-Id": "m1",
            "Ce-Requestid": "m1",
            "Ce-Modelid": "sklearn-iris",
            "Ce-Inferenceservicename": "mlserver",
            "Content-Type": "application/json",
        }
        answer = await client.post("/v1/cloudevents", data=json.dumps(body), headers=headers)
        assert answer.status == 200, await answer.text()
    requests, rows = stored(store)
    assert sorted(requests["request_id"]) == ["m1", "s1"]
    assert sorted(rows["petal_length"].tolist()) == [3.0, 4.5, 4.8]
    # Neither logger sent a `time`: both calls are dated by when they were received (the
    # handler's clock), not by the CloudEvents SDK's own wall clock.
    assert {ts.astimezone(UTC) for ts in requests["ts"]} == {NOW}


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({"Content-Type": "application/json"}, REQUEST, 400, "not a CloudEvent"),
        (
            kserve_headers("request", "x", "2026-11-25T12:00Z", **{"ce-type": "com.example.other"}),
            REQUEST,
            400,
            "unsupported CloudEvent type 'com.example.other'",
        ),
        (
            {
                k: v
                for k, v in kserve_headers("request", "x", "2026-11-25T12:00Z").items()
                if k != "ce-inferenceservicename"
            },
            REQUEST,
            422,
            "names no model: expected the 'inferenceservicename' extension",
        ),
    ],
)
async def test_malformed_events_are_refused_and_store_nothing(
    handler_and_client: tuple[CloudEventsHandler, TestClient[Any, Any]],
    store: SqlStore,
    headers: dict[str, str],
    body: Any,
    status: int,
    message: str,
) -> None:
    _, client = handler_and_client
    response = await client.post("/v1/cloudevents", data=json.dumps(body), headers=headers)
    assert response.status == status
    assert message in (await response.json())["error"]
    assert store.stale_pending(NOW + timedelta(days=1)) == []


async def test_a_request_whose_response_never_comes_is_stored_after_the_timeout(
    handler_and_client: tuple[CloudEventsHandler, TestClient[Any, Any]],
    store: SqlStore,
    clock: Clock,
) -> None:
    handler, client = handler_and_client
    await client.post(
        "/v1/cloudevents",
        data=json.dumps(REQUEST),
        headers=kserve_headers("request", "lost", "2026-11-25T12:00Z"),
    )
    assert await handler.expire(timedelta(minutes=5)) == 0
    clock.now = NOW + timedelta(minutes=6)
    assert await handler.expire(timedelta(minutes=5)) == 1
    requests, rows = stored(store)
    assert requests["capture_note"].tolist() == ["no_body: the response was never logged"]
    # KServe's agent logs a response only when the model answered 200: a request alone is a
    # failed call, never a success with latency 0 (that undercounted every real failure).
    assert requests["status_code"].tolist() == [599]
    assert requests["error"].tolist() == ["response_not_logged"]
    assert requests["latency_ms"].isna().tolist() == [True]
    assert handler._metrics.unanswered_calls._value.get() == 1
    assert len(rows) == 0
    assert await handler.expire(timedelta(minutes=5)) == 0


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        (
            {"Content-Type": "application/cloudevents-batch+json"},
            b"[]",
            "batch mode is not supported",
        ),
        (
            {"Content-Type": "application/cloudevents+json"},
            b'[{"specversion": "1.0"}]',
            "must be a JSON object",
        ),
        ({"Content-Type": "application/cloudevents+json"}, b"[" * 100_000, "nests too deeply"),
    ],
)
async def test_bodies_that_are_no_single_event_get_a_400_and_no_traceback(
    handler_and_client: tuple[CloudEventsHandler, TestClient[Any, Any]],
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
    body: bytes,
    message: str,
) -> None:
    _, client = handler_and_client
    response = await client.post("/v1/cloudevents", data=body, headers=headers)
    assert response.status == 400
    assert message in (await response.json())["error"]
    assert not [record for record in caplog.records if record.exc_info]


async def test_a_time_past_any_real_event_is_a_422_on_both_databases(
    handler_and_client: tuple[CloudEventsHandler, TestClient[Any, Any]],
    store: SqlStore,
) -> None:
    _, client = handler_and_client
    headers = kserve_headers("request", "far", "9999-12-31T23:59:59Z")
    response = await client.post("/v1/cloudevents", data=json.dumps(REQUEST), headers=headers)
    assert response.status == 422
    assert "not between 1970 and 9999" in (await response.json())["error"]
    assert store.stale_pending(NOW + timedelta(days=1)) == []


async def test_nul_characters_store_the_whole_call(
    handler_and_client: tuple[CloudEventsHandler, TestClient[Any, Any]],
    store: SqlStore,
) -> None:
    # On PostgreSQL the request once stood without its rows, with a bare 500.
    _, client = handler_and_client
    request = {"instances": [[6.8, 2.8, 4.8, 1.4], ["a\u0000b", 3.4, 4.5, 1.6]]}
    for kind, body in (("request", request), ("response", RESPONSE)):
        headers = kserve_headers(kind, "nul", "2026-11-25T11:59:59.500Z")
        answer = await client.post("/v1/cloudevents", data=json.dumps(body), headers=headers)
        assert answer.status == 200
    requests, rows = stored(store)
    assert requests["request_id"].tolist() == ["nul"]
    assert sorted(rows["petal_length"].tolist()) == [4.5, 4.8]


async def test_binary_bodies_are_read_as_sent_whatever_their_content_type(
    handler_and_client: tuple[CloudEventsHandler, TestClient[Any, Any]],
    store: SqlStore,
) -> None:
    # curl's default is form encoding; KServe's agent passes the content type on.
    _, client = handler_and_client
    sent = {
        "request": json.dumps(REQUEST, indent=2).encode(),
        "response": json.dumps(RESPONSE).encode(),
    }
    for kind, body in sent.items():
        headers = kserve_headers(
            kind, "form", "2026-11-25T11:59:59.500Z", **{"Content-Type": "text/plain"}
        )
        if kind == "request":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        answer = await client.post("/v1/cloudevents", data=body, headers=headers)
        assert answer.status == 200, await answer.text()
    requests, rows = stored(store)
    assert requests["capture_note"].tolist() == [None]
    assert len(rows) == 2
    # Sizes are what the server sent, not a re-serialised copy.
    assert requests["request_bytes"].tolist() == [len(sent["request"])]
    assert requests["response_bytes"].tolist() == [len(sent["response"])]


async def test_the_callers_request_id_comes_from_the_metadata_extension(
    handler_and_client: tuple[CloudEventsHandler, TestClient[Any, Any]],
    store: SqlStore,
) -> None:
    _, client = handler_and_client
    metadata = json.dumps({"X-Request-Id": ["caller-7"], "User-Agent": ["curl"]})
    for kind, body in (("request", REQUEST), ("response", RESPONSE)):
        headers = kserve_headers(
            kind, "ce-id-1", "2026-11-25T11:59:59.500Z", **{"ce-metadata": metadata}
        )
        del headers["ce-endpoint"]  # no endpoint: the default predictor
        await client.post("/v1/cloudevents", data=json.dumps(body), headers=headers)
    requests, rows = stored(store)
    assert requests["request_id"].tolist() == ["caller-7"]
    assert requests["version"].tolist() == ["default"]
    # Labels keyed on the caller's id now find the call's rows.
    assert sorted(rows["request_id"]) == ["caller-7", "caller-7"]
