"""The disk spool: batches wait here, oldest first, while the sink is down.

Each batch is one file, written to a temporary name, fsynced and renamed, so a crash (or a
full disk) leaves either the whole batch or nothing. A batch is deleted only after the sink
accepted it; if the process dies between the two, the batch is sent again on restart,
which the idempotent store and collector turn into a no-op. The total size is bounded: a
batch that would pass the bound is refused and the caller counts it as dropped. Batches
that can never be delivered (the sink refused their data, or they cannot be read back) are
moved to a quarantine folder beside it instead of blocking the batches behind them.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

_SUFFIX = ".jsonl"
QUARANTINE = "quarantine"
# Sequence numbers start mid-range so batches can also be put in front of the oldest.
_START = 10**15


class Spool:
    """Thread-safe FIFO of byte payloads on disk, bounded by ``max_bytes``."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.tmp"):  # a write that never finished
            leftover.unlink(missing_ok=True)
        self._files: list[tuple[str, int]] = sorted(
            (path.name, path.stat().st_size) for path in directory.glob(f"*{_SUFFIX}")
        )
        self._bytes = sum(size for _, size in self._files)
        set_aside = list((directory / QUARANTINE).glob(f"*{_SUFFIX}"))
        self._quarantined = sum(path.stat().st_size for path in set_aside)
        self._set_aside_next = 1 + max(
            (
                int(stem)
                for path in set_aside
                if (stem := path.name.removesuffix(_SUFFIX)).isdigit()
            ),
            default=0,
        )
        numbers = [int(name.removesuffix(_SUFFIX)) for name, _ in self._files] or [_START]
        self._next = max(numbers) + 1
        self._first = min(numbers) - 1

    @property
    def pending(self) -> int:
        """Batches waiting."""
        return len(self._files)

    @property
    def size(self) -> int:
        """Bytes waiting."""
        return self._bytes

    def append(self, payload: bytes, *, front: bool = False) -> bool:
        """Store a batch at the tail (or the head); False, nothing written, when it would
        pass the bound."""
        with self._lock:
            if self._bytes + len(payload) > self.max_bytes:
                return False
            if front:
                number, self._first = self._first, self._first - 1
            else:
                number, self._next = self._next, self._next + 1
            name = f"{number:020d}{_SUFFIX}"
            # Reserve the space before the slow write so concurrent appends see it.
            self._bytes += len(payload)
        try:
            _write_whole(self.directory, name, payload)
        except OSError:
            with self._lock:
                self._bytes -= len(payload)
            raise
        with self._lock:
            self._files.append((name, len(payload)))
            self._files.sort()
        return True

    def quarantine(self, lines: list[bytes]) -> bool:
        """Set aside batches that can never be delivered, one JSON line each, in
        ``quarantine/`` (bounded by a tenth of ``max_bytes``); False when that is full.

        Kept for a person to look at (and replay by hand if the sink was at fault), never
        replayed by the sidecar, so they cannot block the events behind them again.
        """
        payload = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
        folder = self.directory / QUARANTINE
        with self._lock:
            if self._quarantined + len(payload) > self.max_bytes // 10:
                return False
            self._quarantined += len(payload)
            number, self._set_aside_next = self._set_aside_next, self._set_aside_next + 1
        folder.mkdir(exist_ok=True)
        try:
            _write_whole(folder, f"{number:020d}{_SUFFIX}", payload)
        except OSError:
            with self._lock:
                self._quarantined -= len(payload)
            raise
        return True

    def oldest(self) -> tuple[str, bytes] | None:
        """The batch at the head (not removed), or None when empty."""
        head = self.head(1, 0)
        return head[0] if head else None

    def head(self, files: int, max_bytes: int) -> list[tuple[str, bytes]]:
        """Up to ``files`` batches from the head (at least one), stopping past ``max_bytes``."""
        with self._lock:
            chosen: list[str] = []
            total = 0
            for name, size in self._files[:files]:
                if chosen and total + size > max_bytes:
                    break
                chosen.append(name)
                total += size
        return [(name, (self.directory / name).read_bytes()) for name in chosen]

    def remove(self, name: str) -> None:
        """Forget a batch the sink has accepted."""
        (self.directory / name).unlink(missing_ok=True)
        with self._lock:
            for index, (existing, size) in enumerate(self._files):
                if existing == name:
                    del self._files[index]
                    self._bytes -= size
                    break


def _write_whole(directory: Path, name: str, payload: bytes) -> None:
    """Write ``name`` so that it exists whole or not at all, even when the disk fills up.

    A write the disk refused (ENOSPC) must not leave its temporary file behind: on a full
    disk that file is what keeps every later batch from fitting.
    """
    temporary = directory / (name + ".tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(directory / name)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    # Renamed already: the batch is there; only its durability across a crash waits.
    with contextlib.suppress(OSError):
        _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
