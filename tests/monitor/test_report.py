"""The HTML report: its size on 30 days of hourly results, and what headless Chromium makes of
it with the network off (no console errors, no outside requests, every section drawn)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from detectors.settings import ModelSettings
from modeltap.schema import DetectorResult, Direction, JsonValue
from monitor.report import SECTIONS, build
from tests.detectors.traffic import MODEL, config

T0 = datetime(2026, 10, 1, tzinfo=UTC)
FEATURES = [f"f{i:02d}" for i in range(20)]


def month_of_results(days: int = 30) -> list[DetectorResult]:
    """Hourly results of every family, two versions, drift planted in the last week."""
    rng = np.random.default_rng(0)
    out: list[DetectorResult] = []

    def add(
        detector: str,
        start: datetime,
        score: float,
        threshold: float | None,
        direction: Direction = "higher",
        feature: str = "",
        version: str = "v1",
        **details: JsonValue,
    ) -> None:
        alert = threshold is not None and (
            score > threshold if direction == "higher" else score < threshold
        )
        out.append(
            DetectorResult(
                MODEL, version, detector, start, start + timedelta(hours=1), start, "ok",
                score, threshold, direction, alert, feature, details=details,
            )
        )  # fmt: skip

    for hour in range(24 * days):
        start = T0 + timedelta(hours=hour)
        late = hour > 24 * (days - 7)
        for index, feature in enumerate(FEATURES):
            psi = float(rng.gamma(2, 0.02)) + (0.3 if late and index < 3 else 0.0)
            add("psi", start, psi, 0.2, feature=feature, test="psi")
            add("feature_drift", start, psi, 0.2, feature=feature, test="psi")
            add("ks", start, float(rng.uniform(0, 1)), 0.05, "lower", feature, test="ks")
            add("missing_ratio", start, float(rng.uniform(0, 0.02)), 0.05, feature=feature)
        add("dataset_drift", start, 0.15 if late else 0.0, 0.5)
        for version in ("v1", "v2"):
            add("accuracy", start, float(rng.normal(0.85 - 0.2 * late, 0.02)), 0.6, "lower",
                version=version)  # fmt: skip
            add("f1", start, float(rng.normal(0.8, 0.02)), None, "lower", version=version)
            add("label_coverage", start, float(rng.uniform(0.6, 0.8)), 0.5, "lower",
                version=version)  # fmt: skip
            for quantile, base in (("50", 20), ("90", 40), ("99", 80)):
                add(f"latency_p{quantile}_ms", start, float(rng.normal(base, 3)), None,
                    version=version)  # fmt: skip
            add("error_rate", start, float(rng.uniform(0, 0.02)), 0.05, version=version)
        add("ab_latency", start, float(rng.uniform(0, 1)), 0.05, "lower", version="v2",
            baseline="v1")  # fmt: skip
        estimate = float(rng.normal(0.8 - 0.15 * late, 0.01))
        add("estimated_accuracy", start, estimate, 0.72, "lower", kind="estimated",
            confidence_lower=estimate - 0.03, confidence_upper=estimate + 0.03)  # fmt: skip
        if hour < 24 * days - 6:  # the newest six hours have no labels yet
            add("realized_accuracy", start, float(rng.normal(0.8 - 0.17 * late, 0.02)), 0.72,
                "lower", kind="realized")  # fmt: skip
        add("reconstruction_error", start, float(rng.normal(1.0 + 0.4 * late, 0.03)), 1.1)
    return out


def test_a_month_of_hourly_results_for_20_features_stays_small(tmp_path: Path) -> None:
    results = month_of_results()
    settings = ModelSettings.from_config(config(), MODEL)
    html = build(settings, results, T0, T0 + timedelta(days=30))
    size = len(html.encode())
    # The budget is 5 MB; a month of 20 features lands far below it.
    assert size < 5 * 2**20, size
    assert "<script" not in html
    assert html.count("<rect") > 24 * 30 * 20  # one heatmap cell per window and feature


def test_estimates_and_multivariate_drift_have_their_sections() -> None:
    results = month_of_results(days=2)
    settings = ModelSettings.from_config(config(), MODEL)
    html = build(settings, results, T0, T0 + timedelta(days=2))
    estimation = html.split('<section id="estimation">')[1].split("</section>")[0]
    assert "<h2>Performance before labels</h2>" in estimation
    assert "estimated accuracy" in estimation
    assert "realized accuracy" in estimation
    assert estimation.count('<polygon class="band"') == 1  # the sampling-error interval
    assert "<title>threshold v1 0.72</title>" in estimation
    alerted = sum(1 for r in results if r.detector == "estimated_accuracy" and r.alert)
    assert f"estimate alerted in {alerted} of 48 windows" in estimation
    assert alerted > 0
    multivariate = html.split('<section id="multivariate">')[1].split("</section>")[0]
    assert "<h2>Multivariate drift</h2>" in multivariate
    assert "<h3>reconstruction_error</h3>" in multivariate
    assert "<title>threshold v1 1.1</title>" in multivariate
    assert "<polyline" in multivariate


def test_without_estimates_the_sections_say_why() -> None:
    results = [r for r in month_of_results(days=1) if "accuracy" not in r.detector]
    results = [r for r in results if r.detector != "reconstruction_error"]
    settings = ModelSettings.from_config(config(), MODEL)
    html = build(settings, results, T0, T0 + timedelta(days=1))
    assert "no estimates in this range (the estimation family needs a labelled" in html
    assert "no multivariate drift results in this range" in html


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "install Debian's chromium (apt-get install chromium) for the report test"
    return found


async def open_offline(page: Path, screenshot: Path) -> dict[str, Any]:
    """Load ``page`` in headless Chromium over the DevTools protocol, network off."""
    scratch = Path(tempfile.mkdtemp(prefix="modeltap-chromium-"))
    try:
        process, port = await start_browser(scratch)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json()
                url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                async with session.ws_connect(url, max_msg_size=0) as ws:
                    return await _drive(ws, page, screenshot)
        finally:
            process.terminate()
            process.wait(30)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def start_browser(scratch: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A headless Chromium and its DevTools port; a second try if the first gives none.

    The subject here is the report, not the browser's start-up: one CI run's shifted-clock
    pass got no DevTools port from Chromium within 30 s, which no run here has repeated
    (it starts in about 0.3 s, with or without libfaketime). A second failure fails the test
    with what Chromium printed both times.
    """
    printed = []
    for attempt in (1, 2):
        profile = scratch / f"profile-{attempt}"
        log = scratch / f"chromium-{attempt}.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
                 "--remote-debugging-port=0", f"--user-data-dir={profile}",
                 "--proxy-server=127.0.0.1:9", "--no-first-run", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=stderr, env=real_clock_environment(),
            )  # fmt: skip
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() and process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if port_file.exists():
            return process, port_file.read_text().split()[0]
        process.kill()
        process.wait(30)
        printed.append(
            f"try {attempt}: exit code {process.returncode}\n"
            + log.read_text(errors="replace")[-3000:]
        )
    raise AssertionError("chromium gave no DevTools port:\n" + "\n".join(printed))


def real_clock_environment() -> dict[str, str]:
    """This environment without libfaketime, for the browser.

    make test repeats the suite with the clock shifted a year (libfaketime, preloaded into
    every child). The report under test is still built here, under the shifted clock; the
    browser that draws it reads no dates, so it keeps the machine's clock, as the broker and
    Prometheus do, and a shifted pass tests the report rather than libfaketime in a browser.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")}
    kept = [p for p in environment.pop("LD_PRELOAD", "").split(":") if p and "faketime" not in p]
    if kept:
        environment["LD_PRELOAD"] = ":".join(kept)
    return environment


async def _drive(
    ws: aiohttp.ClientWebSocketResponse, page: Path, screenshot: Path
) -> dict[str, Any]:
    counter = iter(range(1, 10_000))
    events: list[dict[str, Any]] = []

    async def call(method: str, **params: Any) -> dict[str, Any]:
        ident = next(counter)
        await ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = json.loads((await ws.receive()).data)
            if message.get("id") == ident:
                result: dict[str, Any] = message.get("result", {})
                return result
            events.append(message)

    for domain in ("Page", "Runtime", "Log", "Network"):
        await call(f"{domain}.enable")
    await call("Network.emulateNetworkConditions", offline=True, latency=0,
               downloadThroughput=-1, uploadThroughput=-1)  # fmt: skip
    started = time.monotonic()
    await call("Page.navigate", url=page.as_uri())
    while not any(e.get("method") == "Page.loadEventFired" for e in events):
        events.append(json.loads((await ws.receive()).data))
    loaded = time.monotonic() - started
    check = """JSON.stringify([...document.querySelectorAll('section')].map(s => ({
        id: s.id, charts: s.querySelectorAll('svg').length,
        bands: [...s.querySelectorAll('polygon.band')].filter(b => b.getBBox().height > 0)
               .length,
        drawn: [...s.querySelectorAll('svg')].every(g => g.getBBox().width > 0 &&
               g.querySelectorAll('rect,polyline,circle').length > 0)})))"""
    evaluated = await call("Runtime.evaluate", expression=check, returnByValue=True)
    shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    errors = [e for e in events if e.get("method") == "Runtime.exceptionThrown"]
    errors += [
        e for e in events
        if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"
    ]  # fmt: skip
    errors += [
        e for e in events
        if e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"
    ]  # fmt: skip
    requests = [
        e["params"]["request"]["url"] for e in events
        if e.get("method") == "Network.requestWillBeSent"
    ]  # fmt: skip
    return {
        "sections": json.loads(evaluated["result"]["value"]),
        "errors": errors,
        "requests": requests,
        "seconds": loaded,
    }


def test_the_report_opens_offline_in_chromium_with_every_section_drawn(tmp_path: Path) -> None:
    settings = ModelSettings.from_config(config(), MODEL)
    results = month_of_results(days=3)
    distributions = '<svg class="chart bars"><rect width="5" height="5"/></svg>'
    page = tmp_path / "report.html"
    page.write_text(
        build(settings, results, T0, T0 + timedelta(days=3), distributions=distributions)
    )
    seen = asyncio.run(open_offline(page, tmp_path / "report.png"))
    assert seen["errors"] == []
    assert [url for url in seen["requests"] if not url.startswith("file://")] == []
    by_id = {section["id"]: section for section in seen["sections"]}
    assert list(by_id) == list(SECTIONS)
    charted = [name for name in SECTIONS if name != "summary"]
    assert all(by_id[name]["charts"] > 0 and by_id[name]["drawn"] for name in charted), by_id
    assert {"multivariate", "estimation"} <= set(by_id)
    assert by_id["estimation"]["bands"] > 0
    assert (tmp_path / "report.png").stat().st_size > 10_000
