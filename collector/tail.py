"""Log-tail mode: follow a JSON-lines file instead of proxying HTTP.

For models that are not served over HTTP, or already log every prediction. Each line is one
call in the generic JSON mapping (features under ``features`` or the model's
``features_path``, the answer under ``prediction`` or ``prediction_path``, …) plus optional
``request_id``, ``latency_ms``, ``status``, ``model``, ``version`` and ``ts`` fields.

The reader survives rotation (it finishes the old file, then opens the new one) and
truncation (it starts over), and keeps its position in a small state file. The position
moves only once a batch is with the sink or in the spool, and event ids derive from each
line and its place in the file, so a restart after a crash re-reads at most one batch and
the store ignores the repeats: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from collector.capture import Exchange
from collector.sidecar import (
    Stopper,
    admin_runner,
    assemble,
    exit_past_stuck_threads,
    guarded_stopper,
    start_site,
)
from modeltap.config import ModelConfig, MonitorConfig
from modeltap.logs import setup_logging
from modeltap.schema import in_range

log = logging.getLogger("modeltap.tail")

_BATCH_LINES = 500
# A replay stuck on a hung sink is left behind after this long; its batch stays spooled.
_REPLAY_STOP = 5.0
Line = tuple[int, int, bytes]  # (inode, offset, the line with its newline)


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading resumes: which file (by inode) and the byte offset in it."""

    inode: int
    offset: int


class _Open:
    """One open file and how far into it complete lines have been read."""

    def __init__(self, handle: IO[bytes], offset: int) -> None:
        self.handle = handle
        self.inode = os.fstat(handle.fileno()).st_ino
        self.offset = offset
        handle.seek(offset)

    @property
    def position(self) -> Position:
        return Position(self.inode, self.offset)

    def lines(self, limit: int) -> list[Line]:
        found: list[Line] = []
        while len(found) < limit:
            line = self.handle.readline()
            if not line.endswith(b"\n"):
                self.handle.seek(self.offset)  # a partial line: wait for the rest of it
                break
            found.append((self.inode, self.offset, line))
            self.offset += len(line)
        return found


class LineReader:
    """Complete lines of a file that may be rotated or truncated underneath the reader."""

    def __init__(self, path: Path, start: Position | None) -> None:
        self.path = path
        self._start = start
        self._file: _Open | None = None
        self._old: _Open | None = None  # a rotated file still being finished

    def read(self, limit: int) -> tuple[list[Line], Position | None]:
        """Up to ``limit`` new lines and the position just after them."""
        if self._file is None and not self._open_first():
            return [], None
        assert self._file is not None
        if self._old is not None:
            lines = self._old.lines(limit)
            if lines:
                return lines, self._old.position
            self._old.handle.close()
            self._old = None
        lines = self._file.lines(limit)
        if not lines and self._moved_on():
            return self.read(limit)
        return lines, self._file.position

    def _open_first(self) -> bool:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return False
        status = os.fstat(handle.fileno())
        start, self._start = self._start, None
        offset = 0
        if start is not None and start.inode == status.st_ino:
            # Resume where we were, unless the file was truncated meanwhile.
            offset = start.offset if start.offset <= status.st_size else 0
        elif start is not None:
            self._old = self._find(start)  # rotated while we were stopped
        self._file = _Open(handle, offset)
        return True

    def _find(self, start: Position) -> _Open | None:
        for candidate in sorted(self.path.parent.iterdir()):
            try:
                if candidate.is_file() and candidate.stat().st_ino == start.inode:
                    return _Open(candidate.open("rb"), start.offset)
            except OSError:
                continue
        log.warning("rotated file with inode %d is gone; some lines may be lost", start.inode)
        return None

    def _moved_on(self) -> bool:
        """Whether the path now names a new file (rotation) or a shorter one (truncation)."""
        assert self._file is not None
        try:
            current = self.path.stat()
        except FileNotFoundError:
            return False  # between rename and re-creation
        if current.st_ino != self._file.inode:
            self._old = self._file  # read to its end before the new file
            try:
                self._file = _Open(self.path.open("rb"), 0)
            except FileNotFoundError:
                self._file, self._old = self._old, None
                return False
            return True
        if current.st_size < self._file.offset:
            log.info("%s was truncated; reading from the start", self.path)
            self._file.offset = 0
            self._file.handle.seek(0)
            return True
        return False

    def close(self) -> None:
        for opened in (self._file, self._old):
            if opened is not None:
                opened.handle.close()


def load_position(state: Path) -> Position | None:
    try:
        data = json.loads(state.read_text())
        return Position(int(data["inode"]), int(data["offset"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_position(state: Path, position: Position) -> None:
    temporary = state.with_name(state.name + ".tmp")
    temporary.write_text(json.dumps({"inode": position.inode, "offset": position.offset}))
    temporary.replace(state)


def line_exchange(line: Line, *, model: str, version: str, now: datetime) -> Exchange | None:
    """One logged call as an Exchange (the line is both its request and its response), or
    None for a line that is not a JSON object, which records no call at all.

    Nothing is made up: a line without ``latency_ms`` has no latency (not 0, which would
    drag the percentiles down); ``status`` defaults to 200, as a logged prediction was
    answered; ``ts`` defaults to when the line was read.
    """
    inode, offset, text = line
    event_id = hashlib.sha256(b"%d:%d:" % (inode, offset) + text).hexdigest()[:32]
    try:
        fields = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(fields, dict):
        return None
    status = _number(fields.get("status"))
    return Exchange(
        event_id=event_id,
        request_id=str(fields.get("request_id") or event_id),
        model=str(fields.get("model") or model),
        version=str(fields.get("version") or version),
        started=_time(fields.get("ts") or fields.get("timestamp"), now),
        latency_ms=_number(fields.get("latency_ms")),
        status=int(status) if status is not None and 0 <= status <= 999 else 200,
        request_bytes=len(text),
        protocol="json",
        request_body=text,
        response_body=text,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _time(value: Any, default: datetime) -> datetime:
    if not isinstance(value, str):
        return default
    try:
        parsed = datetime.fromisoformat(value)
        moment = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return default
    return moment if in_range(moment) else default


def tail_models(models: list[ModelConfig]) -> list[ModelConfig]:
    """The models with tail defaults: features under ``features`` unless a path is set."""
    return [
        model
        if model.payload.features_path
        else model.model_copy(
            update={"payload": model.payload.model_copy(update={"features_path": "features"})}
        )
        for model in models
    ]


async def run_tail(
    config: MonitorConfig,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    stopper: Stopper | None = None,
    poll: float = 0.2,
) -> int:
    """Follow ``sidecar.tail`` until stopped; returns the exit code."""
    settings = config.sidecar
    if settings.tail is None:
        raise ValueError("run_tail needs sidecar.tail")
    stopper = stopper or Stopper()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopper)
    parts = assemble(config.model_copy(update={"models": tail_models(config.models)}), clock)
    digest = hashlib.sha256(str(settings.tail.resolve()).encode()).hexdigest()[:12]
    state = settings.spool_dir / f"tail-{digest}.json"
    reader = LineReader(settings.tail, load_position(state))
    names = [model.name for model in config.models]
    model = settings.model or (names[0] if len(names) == 1 else "default")
    admin = admin_runner(parts.registry, settings.tail.exists)
    await admin.setup()
    await start_site(admin, settings.metrics_listen, "sidecar.metrics_listen")
    replay = asyncio.create_task(parts.pipeline.replay())
    log.info("following %s (position kept in %s)", settings.tail, state)
    try:
        while not stopper.requested.is_set():
            lines, position = reader.read(_BATCH_LINES)
            if not lines:
                await asyncio.wait([asyncio.create_task(stopper.requested.wait())], timeout=poll)
                continue
            now, version = clock(), settings.model_version or ""
            read = [line_exchange(line, model=model, version=version, now=now) for line in lines]
            exchanges = [exchange for exchange in read if exchange is not None]
            if len(exchanges) < len(read):
                skipped = len(read) - len(exchanges)
                parts.metrics.dropped.labels("unreadable_line").inc(skipped)
                log.warning(
                    "%d line(s) of %s are not JSON objects; skipped", skipped, settings.tail
                )
            if exchanges:
                await parts.pipeline.deliver(exchanges)
            if position is not None:
                save_position(state, position)
    finally:
        parts.pipeline.stop()
        replay.cancel()
        await asyncio.wait([replay], timeout=_REPLAY_STOP)
        reader.close()
        await admin.cleanup()
        await parts.sink.close()
    return 0


def main(config: MonitorConfig) -> int:
    """Run tail mode; logs go to stderr."""
    setup_logging()
    code = asyncio.run(run_tail(config, stopper=guarded_stopper(config)))
    exit_past_stuck_threads(code)
    return code
