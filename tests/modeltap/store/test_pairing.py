"""Pairing logged request and response halves, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

from modeltap.store import SqlStore
from modeltap.store.pairing_mixin import Half, LoggedHalf
from tests.modeltap.store.factories import T0


def half(pair_id: str, kind: Half, body: bytes = b"{}", seconds: float = 0) -> LoggedHalf:
    return LoggedHalf(
        pair_id=pair_id,
        half=kind,
        source="kserve",
        model="iris",
        version="default",
        body=body,
        time=T0 + timedelta(seconds=seconds),
        received_at=T0 + timedelta(seconds=seconds),
    )


def test_either_half_may_come_first(store: SqlStore) -> None:
    assert store.pair_half(half("a", "request", b'{"x": 1}')) is None
    pair = store.pair_half(half("a", "response", b'{"y": 2}', seconds=0.25))
    assert pair is not None
    assert (pair.request_body, pair.response_body) == (b'{"x": 1}', b'{"y": 2}')
    assert pair.response_time - pair.request_time == timedelta(seconds=0.25)  # type: ignore[operator]
    assert store.pair_half(half("b", "response")) is None
    assert store.pair_half(half("b", "request")) is not None


def test_a_repeated_half_replaces_and_forget_clears(store: SqlStore) -> None:
    store.pair_half(half("c", "request", b"old"))
    store.pair_half(half("c", "request", b"new"))  # a logger's retry
    pair = store.pair_half(half("c", "response"))
    assert pair is not None
    assert pair.request_body == b"new"
    store.forget_pair("c")
    assert store.pair_half(half("c", "response")) is None  # a fresh start


def test_halves_that_never_pair_expire(store: SqlStore) -> None:
    store.pair_half(half("lonely", "request", seconds=0))
    store.pair_half(half("recent", "request", seconds=600))
    stale = store.stale_pending(T0 + timedelta(seconds=60))
    assert [(p.pair_id, p.response_body) for p in stale] == [("lonely", None)]
    store.forget_pair("lonely")
    assert store.stale_pending(T0 + timedelta(seconds=60)) == []
    assert [p.pair_id for p in store.stale_pending(T0 + timedelta(seconds=601))] == ["recent"]


def test_two_writers_receiving_the_two_halves_at_once_never_miss(store_url: str) -> None:
    stores = [SqlStore.open(store_url, migrate=True) for _ in range(2)]
    completed: list[str] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        kind: Half = "request" if index == 0 else "response"
        for n in range(200):
            pair = stores[index].pair_half(half(f"p{n}", kind))
            if pair is not None:
                with lock:
                    completed.append(pair.pair_id)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(completed) == sorted(f"p{n}" for n in range(200))  # each exactly once
    for opened in stores:
        opened.close()
