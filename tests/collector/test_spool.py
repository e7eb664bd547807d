"""The disk spool: FIFO, bounded, crash-safe, shared by threads."""

from __future__ import annotations

import threading
from pathlib import Path

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
