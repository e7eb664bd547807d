"""A small, real model server for the sidecar's tests and benchmarks.

A scikit-learn logistic regression on the iris data behind the routes real servers use —
KServe v1, Open Inference Protocol v2, plain JSON — on Starlette and uvicorn like KServe's
own Python server, plus routes that exercise the proxy (echo, streaming, large and gzip
bodies, slow answers, arbitrary status codes). Run: python -m tests.collector.model_server
--port 8080. Any route sleeps ``delay_ms`` when the query string has it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import uvicorn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
_iris = load_iris()
MODEL = LogisticRegression(max_iter=500).fit(_iris.data, _iris.target)


async def _delay(request: Request) -> None:
    if "delay_ms" in request.query_params:
        await asyncio.sleep(float(request.query_params["delay_ms"]) / 1000)


def _predict(rows: list[list[float]]) -> tuple[list[int], list[list[float]]]:
    data = np.asarray(rows, dtype=float)
    return MODEL.predict(data).tolist(), MODEL.predict_proba(data).round(6).tolist()


async def kserve_v1(request: Request) -> Response:
    await _delay(request)
    body = await request.json()
    rows = [
        [row[name] for name in FEATURES] if isinstance(row, dict) else row
        for row in body["instances"]
    ]
    classes, _ = _predict(rows)
    return JSONResponse({"predictions": classes})


async def oip_v2(request: Request) -> Response:
    await _delay(request)
    body = await request.json()
    tensor = body["inputs"][0]
    rows = np.asarray(tensor["data"], dtype=float).reshape(tensor["shape"]).tolist()
    classes, probabilities = _predict(rows)
    return JSONResponse(
        {
            "model_name": request.path_params["model"],
            "id": body.get("id", ""),
            "outputs": [
                {"name": "predict", "shape": [len(rows)], "datatype": "INT64", "data": classes},
                {
                    "name": "predict_proba",
                    "shape": [len(rows), 3],
                    "datatype": "FP32",
                    "data": [p for row in probabilities for p in row],
                },
            ],
        }
    )


async def plain_json(request: Request) -> Response:
    await _delay(request)
    body = await request.json()
    records = body["features"] if isinstance(body.get("features"), list) else [body["features"]]
    classes, probabilities = _predict([[r[name] for name in FEATURES] for r in records])
    return JSONResponse(
        {
            "predictions": [
                {"label": int(c), "probability": max(p)}
                for c, p in zip(classes, probabilities, strict=True)
            ]
        }
    )


async def echo(request: Request) -> Response:
    """The body back byte for byte; what arrived described in X-Echo-* headers."""
    await _delay(request)
    body = await request.body()
    seen = json.dumps([[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.headers.raw])
    headers = {
        "X-Echo-Method": request.method,
        "X-Echo-Target": base64.b64encode(
            request.scope["raw_path"] + b"?" + request.scope["query_string"]
        ).decode(),
        "X-Echo-Headers": base64.b64encode(seen.encode()).decode(),
    }
    media = request.headers.get("content-type", "application/octet-stream")
    if "content-encoding" in request.headers:
        headers["Content-Encoding"] = request.headers["content-encoding"]
    return Response(body, media_type=media, headers=headers)


# Streams that hold their later events until a test opens their gate (POST /release/NAME),
# so a test can show the first event was forwarded before the rest existed, by order alone.
GATES: dict[str, asyncio.Event] = {}


async def stream(request: Request) -> Response:
    count = int(request.query_params.get("n", "5"))
    pause = float(request.query_params.get("interval", "0.2"))
    name = request.query_params.get("gate")
    gate = GATES.setdefault(name, asyncio.Event()) if name else None

    async def events() -> AsyncIterator[bytes]:
        for number in range(count):
            yield f"data: event {number}\n\n".encode()
            if gate is not None and number == 0:
                # Bounded so a proxy that buffers fails the test instead of hanging the server.
                await asyncio.wait_for(gate.wait(), timeout=60)
            await asyncio.sleep(pause)

    return StreamingResponse(events(), media_type="text/event-stream")


async def release(request: Request) -> Response:
    GATES.setdefault(request.path_params["name"], asyncio.Event()).set()
    return JSONResponse({"released": request.path_params["name"]})


async def big(request: Request) -> Response:
    size = int(request.query_params["size"])
    data = random.Random(size).randbytes(size)
    return Response(data, media_type="application/octet-stream")


async def gzipped(request: Request) -> Response:
    await _delay(request)
    body: Any = await request.json() if request.method == "POST" else {"predictions": [1, 0]}
    data = gzip.compress(json.dumps(body).encode(), mtime=0)
    return Response(data, media_type="application/json", headers={"Content-Encoding": "gzip"})


async def status(request: Request) -> Response:
    code = int(request.path_params["code"])
    return JSONResponse({"status": code}, status_code=code)


async def health(_request: Request) -> Response:
    return JSONResponse({"ok": True})


async def ping(request: Request) -> Response:
    """The trivial upstream of the throughput benchmark."""
    await _delay(request)
    return Response(b'{"ok":true}', media_type="application/json")


ANY = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
app = Starlette(
    routes=[
        Route("/v1/models/{model}:predict", kserve_v1, methods=["POST"]),
        Route("/v2/models/{model}/infer", oip_v2, methods=["POST"]),
        Route("/v2/models/{model}/versions/{version}/infer", oip_v2, methods=["POST"]),
        Route("/predict", plain_json, methods=["POST"]),
        Route("/echo/{rest:path}", echo, methods=ANY),
        Route("/stream", stream),
        Route("/release/{name}", release, methods=["POST"]),
        Route("/big", big),
        Route("/gzip", gzipped, methods=["GET", "POST"]),
        Route("/status/{code:int}", status, methods=ANY),
        Route("/healthz", health),
        Route("/ping", ping, methods=["GET", "POST"]),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    arguments = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=arguments.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
