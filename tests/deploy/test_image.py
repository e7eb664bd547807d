"""The images, built for real (scripts/image.sh: podman on an mmdebstrap base) and run.

The sidecar image proxies a request to a model server and captures it, as its non-root
user; the full image runs `monitor`. Marked real_clock: the build fetches packages over TLS,
and it runs once per `make test`, not again under a shifted clock (its layers are cached in
.state/image, so a second build costs seconds, but the first costs minutes).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.collector.conftest import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "image.sh"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
UID = 65532

pytestmark = pytest.mark.real_clock


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "podman", *args], capture_output=True, text=True, check=check,
        timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """Both images, built (or found up to date in the layer cache) by scripts/image.sh."""
    result = subprocess.run(
        [str(SCRIPT), "build"], capture_output=True, text=True, check=False, timeout=1800
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {
        "full": f"localhost/modeltap:{VERSION}",
        "sidecar": f"localhost/modeltap-sidecar:{VERSION}",
    }


def inspect(image: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(podman("image", "inspect", image).stdout)[0]
    return found


@pytest.mark.parametrize("target", ["full", "sidecar"])
def test_the_image_runs_monitor_as_a_non_root_user_with_a_healthcheck_and_labels(
    images: dict[str, str], target: str
) -> None:
    found = inspect(images[target])
    config = found["Config"]
    assert config["Entrypoint"] == ["monitor"]
    assert config["User"] == f"{UID}:{UID}"
    # podman reports the health check beside the OCI config (which has no such field).
    assert "MODELTAP_HEALTHCHECK_URL" in found["Healthcheck"]["Test"][-1]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.title"] == (
        "modeltap" if target == "full" else "modeltap-sidecar"
    )
    assert labels["org.opencontainers.image.base.name"].startswith("localhost/modeltap-base")
    assert podman("run", "--rm", "--entrypoint", "id", images[target]).stdout.split()[0] == (
        f"uid={UID}(modeltap)"
    )


def test_monitor_help_works_in_the_full_image(images: dict[str, str]) -> None:
    result = podman("run", "--rm", images["full"], "--help")
    for command in ("sidecar", "collect", "serve", "detect", "check", "backfill"):
        assert f"  {command} " in result.stdout


def test_the_sidecar_image_has_no_statistics_stack(images: dict[str, str]) -> None:
    probe = (
        "import importlib.util as u; import json; "
        "names = ('numpy', 'scipy', 'pandas', 'pyarrow', 'aiohttp'); "
        "print(json.dumps([m for m in names if u.find_spec(m)]))"
    )
    result = podman("run", "--rm", "--entrypoint", "python", images["sidecar"], "-c", probe)
    assert json.loads(result.stdout) == ["aiohttp"]  # the probe sees what is installed
    full = podman("run", "--rm", "--entrypoint", "python", images["full"], "-c", probe)
    assert json.loads(full.stdout) == ["numpy", "scipy", "pandas", "pyarrow", "aiohttp"]


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    log = tmp_path / "model.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.collector.model_server", "--port", str(port)],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", log=log)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def test_the_sidecar_in_its_image_proxies_and_captures_as_non_root(
    images: dict[str, str], model_server: int, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o777)  # written by the image's user, whatever the host maps it to
    port, metrics = free_port(), free_port()
    name = f"modeltap-test-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "-d", "--name", name, "--network", "host", "--read-only",
        "-v", f"{data}:/var/lib/modeltap/data",
        "-e", "MONITOR_MODELS__0__NAME=iris", "-e", "MONITOR_MODELS__0__TASK=classification",
        "-e", f"MODELTAP_HEALTHCHECK_URL=http://127.0.0.1:{metrics}/healthz",
        images["sidecar"], "sidecar",
        "--upstream", f"http://127.0.0.1:{model_server}", "--listen", f"127.0.0.1:{port}",
        "--metrics-listen", f"127.0.0.1:{metrics}", "--model", "iris",
        "--sink", "sqlite:////var/lib/modeltap/data/capture.db",
        "--spool-dir", "/var/lib/modeltap/data/spool",
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{metrics}/readyz", seconds=60)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models/iris:predict",
            data=json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}).encode(),
            headers={"Content-Type": "application/json", "X-Request-ID": "in-the-image"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert len(json.loads(response.read())["predictions"]) == 2
        assert podman("healthcheck", "run", name, check=False).returncode == 0
        assert podman("exec", name, "id", "-u").stdout.strip() == str(UID)
    finally:
        podman("stop", "-t", "30", name, check=False, timeout=60)
        state = json.loads(podman("inspect", name).stdout)[0]["State"]
        logs = podman("logs", name, check=False).stderr
        podman("rm", "-f", name, check=False)
    assert state["ExitCode"] == 0, logs[-3000:]
    database = data / "capture.db"
    assert database.stat().st_uid == UID  # written by the image's user, not root
    # SIGTERM flushed the queue: both rows of the batch request are stored.
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "select count(*) from predictions where request_id = 'in-the-image'"
        ).fetchone()
    assert rows == (2,)
