"""HTTP ingest on `monitor serve`: late labels (``POST /v1/labels``).

A request is written all or nothing: every label is validated first, and the batch is
upserted in one transaction, so a 422 means nothing was stored. Labels upsert on their key
(request id and row, or instance id): posting a correction replaces the earlier value.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from modeltap.config import MonitorConfig
from modeltap.errors import StorageError, StorageUnavailableError
from modeltap.labels import LabelError, parse_labels
from modeltap.schema import EventBatch, LabelRecord, WriteSummary
from modeltap.store import Store

log = logging.getLogger("modeltap.ingest")
T = TypeVar("T")

MAX_BODY = 16 * 2**20


def problem(status: int, message: str, **extra: Any) -> web.Response:
    """A JSON error body every client can show: {"error": ..., plus details}."""
    return web.json_response({"error": message, **extra}, status=status)


class Refused(Exception):  # noqa: N818 - it is the answer, not a failure of ours
    """An ingest request answered with an error status; nothing was stored."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}

    def response(self) -> web.Response:
        answer = problem(self.status, str(self))
        answer.headers.update(self.headers)
        return answer


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.labels_written = Counter(
            "modeltap_serve_labels_written", "Labels stored for the first time.", registry=registry
        )
        self.labels_unmatched = Counter(
            "modeltap_serve_labels_unmatched",
            "Labels stored with no prediction of theirs stored yet (a later one still joins).",
            registry=registry,
        )
        self.labels_updated = Counter(
            "modeltap_serve_labels_updated",
            "Labels that replaced an earlier value.",
            registry=registry,
        )
        self.logged_calls = Counter(
            "modeltap_serve_logged_calls",
            "Calls received from other servers' CloudEvents loggers.",
            registry=registry,
        )
        self.unanswered_calls = Counter(
            "modeltap_serve_unanswered_calls",
            "Logged calls whose response never came (stored as failed, status 599).",
            registry=registry,
        )
        self.rejected = Counter(
            "modeltap_serve_rejected_requests",
            "Ingest requests refused (bad body, auth, schema).",
            registry=registry,
        )


class StoreRunner:
    """Runs the synchronous store on its own threads, off the event loop."""

    def __init__(self, store: Store, threads: int = 4) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="modeltap-store")

    async def write(self, batch: EventBatch) -> WriteSummary:
        return await self.call(self.store.write, batch)

    async def call(self, function: Callable[..., T], *arguments: Any) -> T:
        """Run one store method on the store's threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *arguments)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def bearer_token(config: MonitorConfig) -> str | None:
    """The token POST /v1/labels requires, from serve.labels_token or its file."""
    serve = config.serve
    if serve.labels_token is not None:
        return serve.labels_token.get_secret_value()
    if serve.labels_token_file is not None:
        return serve.labels_token_file.read_text(encoding="utf-8").strip()
    return None


class LabelsHandler:
    """POST /v1/labels: one label object or an array of them."""

    def __init__(
        self,
        runner: StoreRunner,
        metrics: IngestMetrics,
        *,
        token: str | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._runner = runner
        self._metrics = metrics
        self._token = token
        self._clock = clock

    async def handle(self, request: web.Request) -> web.Response:
        try:
            labels = await self._parse(request)
            summary = await self._store(labels)
        except Refused as refused:
            if refused.status < 500:
                self._metrics.rejected.inc()
            return refused.response()
        self._metrics.labels_written.inc(summary.labels_written)
        self._metrics.labels_updated.inc(summary.labels_updated)
        self._metrics.labels_unmatched.inc(summary.labels_unmatched)
        return web.json_response(
            {
                "written": summary.labels_written,
                "updated": summary.labels_updated,
                "unmatched": summary.labels_unmatched,
            }
        )

    async def _parse(self, request: web.Request) -> list[LabelRecord]:
        if self._token is not None and not self._authorized(request):
            raise Refused(
                401,
                "missing or wrong bearer token; send 'Authorization: Bearer <serve.labels_token>'",
                {"WWW-Authenticate": 'Bearer realm="modeltap"'},
            )
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as error:
            raise Refused(400, f"the body is not JSON: {error}") from None
        except RecursionError:
            raise Refused(400, "the body is not a label: its JSON nests too deeply") from None
        many = isinstance(body, list)
        try:
            return parse_labels(
                body if many else [body],
                self._clock(),
                where="labels" if many else "label",
                indexed=many,
            )
        except LabelError as error:
            raise Refused(422, str(error)) from None

    async def _store(self, labels: list[LabelRecord]) -> WriteSummary:
        if not labels:
            return WriteSummary()
        try:
            return await self._runner.write(EventBatch(labels=labels))
        except StorageUnavailableError as error:
            raise Refused(503, str(error)) from None
        except StorageError as error:
            log.error("storing labels failed: %s", error)
            raise Refused(500, "storing the labels failed; nothing was written") from None

    def _authorized(self, request: web.Request) -> bool:
        assert self._token is not None
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        # Constant-time comparison: the token must not leak through response timing.
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), self._token)
