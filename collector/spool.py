"""The disk spool: batches wait here, oldest first, while the sink is down.

Each batch is one file, written to a temporary name, fsynced and renamed, so a crash leaves
either the whole batch or nothing. A batch is deleted only after the sink accepted it; if
the process dies between the two, the batch is sent again on restart, which the idempotent
store and collector turn into a no-op. The total size is bounded: a batch that would pass
the bound is refused and the caller counts it as dropped.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_SUFFIX = ".jsonl"
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
            temporary = self.directory / (name + ".tmp")
            with temporary.open("wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.rename(self.directory / name)
            _fsync_directory(self.directory)
        except OSError:
            with self._lock:
                self._bytes -= len(payload)
            raise
        with self._lock:
            self._files.append((name, len(payload)))
            self._files.sort()
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


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
