"""The disk spool: FIFO, bounded, crash-safe, shared by threads."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.spool import Spool


def drain(spool: Spool) -> list[bytes]:
    out = []
    while (head := spool.oldest()) is not None:
        out.append(head[1])
        spool.remove(head[0])
    return out


def test_batches_come_back_oldest_first_and_front_goes_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000)
    for payload in (b"one", b"two", b"three"):
        assert spool.append(payload)
    assert spool.append(b"retry", front=True)
    assert (spool.pending, spool.size) == (4, 16)
    assert drain(spool) == [b"retry", b"one", b"two", b"three"]
    assert (spool.pending, spool.size) == (0, 0)


def test_the_bound_refuses_without_writing(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10)
    assert spool.append(b"123456")
    assert not spool.append(b"123456")
    assert spool.pending == 1
    assert len(list(tmp_path.iterdir())) == 1
    assert spool.append(b"1234")  # exactly at the bound is fine


def test_a_restart_finds_the_batches_in_order_and_drops_half_writes(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=1000)
    first.append(b"a")
    first.append(b"b")
    first.append(b"z", front=True)
    (tmp_path / "00000000000000000099.jsonl.tmp").write_bytes(b"half")
    second = Spool(tmp_path, max_bytes=1000)
    assert second.pending == 3
    second.append(b"c")
    second.append(b"y", front=True)
    assert drain(second) == [b"y", b"z", b"a", b"b", b"c"]
    assert not list(tmp_path.glob("*.tmp"))


def test_appends_from_many_threads_are_all_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10**6)
    threads = [
        threading.Thread(target=lambda n=n: [spool.append(f"{n}-{i}".encode()) for i in range(50)])
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    payloads = drain(spool)
    assert sorted(payloads) == sorted(f"{n}-{i}".encode() for n in range(4) for i in range(50))
    for n in range(4):  # each thread's own batches keep their order
        mine = [p for p in payloads if p.startswith(f"{n}-".encode())]
        assert mine == [f"{n}-{i}".encode() for i in range(50)]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB filesystem (tmpfs), to fill up for real."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_a_full_disk_leaves_no_half_file_and_mends_once_space_is_back(tiny_disk: Path) -> None:
    spool = Spool(tiny_disk, max_bytes=10**7)  # the bound is not what stops it: the disk is
    batch = b"x" * 20_000
    written = 0
    refusal: OSError | None = None
    while refusal is None:
        try:
            spool.append(batch)
            written += 1
        except OSError as error:
            refusal = error
    assert "No space left" in str(refusal)
    # Once a half file stayed behind, filling the disk and refusing every later batch.
    assert not list(tiny_disk.glob("*.tmp"))
    assert (spool.pending, spool.size) == (written, written * len(batch))
    assert sum(path.stat().st_size for path in tiny_disk.iterdir()) == spool.size
    head = spool.oldest()
    assert head is not None
    spool.remove(head[0])
    assert spool.append(batch)  # space is back: so is the spool
    assert spool.pending == written
