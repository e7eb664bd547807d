"""`monitor serve` as a real process: labels, CloudEvents, health, metrics, a clean stop."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.collector.conftest import free_port, wait_http

pytestmark = pytest.mark.integration


def post(url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_takes_labels_and_logged_calls_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "serve.db"
    token_file = tmp_path / "token"
    token_file.write_text("t0ken\n")
    config = tmp_path / "serve.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"url": f"sqlite:///{database}"},
                "serve": {"listen": f"127.0.0.1:{port}", "labels_token_file": str(token_file)},
            }
        )
    )
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "monitor"), "--config", str(config), "serve"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", log=tmp_path / "serve.log")
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
            assert response.status == 200
        status, body = post(f"{base}/v1/labels", {"request_id": "r1", "label": 1}, {})
        assert status == 401
        status, body = post(
            f"{base}/v1/labels",
            [{"request_id": "r1", "label": 1}],
            {"Authorization": "Bearer t0ken"},
        )
        # No prediction r1 is stored yet, so the label is kept and counted as unmatched.
        assert (status, body) == (200, {"written": 1, "updated": 0, "unmatched": 1})
        for kind, payload in (
            ("request", {"instances": [[1, 2]]}),
            ("response", {"predictions": [0]}),
        ):
            status, body = post(
                f"{base}/v1/cloudevents",
                payload,
                {
                    "ce-specversion": "1.0",
                    "ce-type": f"org.kubeflow.serving.inference.{kind}",
                    "ce-source": "x",
                    "ce-id": "call-1",
                    "ce-inferenceservicename": "iris",
                },
            )
            assert status == 200
        assert body == {"status": "stored"}
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            exposition = response.read()
        assert b"modeltap_serve_labels_written_total 1.0" in exposition
        assert b"modeltap_serve_logged_calls_total 1.0" in exposition
        promtool = shutil.which("promtool")
        assert promtool is not None
        linted = subprocess.run(
            [promtool, "check", "metrics"], input=exposition, capture_output=True, check=False
        )
        assert (linted.returncode, linted.stdout, linted.stderr) == (0, b"", b"")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        log.close()
    assert code == 0
