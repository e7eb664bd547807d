"""The proxy's small pure helpers."""

from __future__ import annotations

import re

from collector.proxy import Ids, forwardable, sampled


def test_hop_by_hop_headers_and_those_connection_names_are_dropped() -> None:
    raw = [
        (b"Host", b"m"),
        (b"Connection", b"keep-alive, X-Secret-Hop"),
        (b"Keep-Alive", b"5"),
        (b"X-Secret-Hop", b"1"),
        (b"Transfer-Encoding", b"chunked"),
        (b"TE", b"trailers"),
        (b"Upgrade", b"h2c"),
        (b"Proxy-Authorization", b"x"),
        (b"X-Kept", b"a"),
        (b"x-kept", b"b"),
        (b"Authorization", b"Bearer t"),
    ]
    assert forwardable(raw) == [
        (b"Host", b"m"),
        (b"X-Kept", b"a"),
        (b"x-kept", b"b"),
        (b"Authorization", b"Bearer t"),
    ]


def test_sampling_is_deterministic_per_request_and_close_to_the_rate() -> None:
    ids = [f"request-{n}" for n in range(20_000)]
    assert all(sampled(i, 1.0) for i in ids[:100])
    assert not any(sampled(i, 0.0) for i in ids[:100])
    kept = [i for i in ids if sampled(i, 0.25)]
    assert 0.23 < len(kept) / len(ids) < 0.27
    assert kept == [i for i in ids if sampled(i, 0.25)]  # the same ids every time
    assert set(kept) <= {i for i in ids if sampled(i, 0.5)}  # a higher rate keeps a superset


def test_ids_are_unique_hex_and_differ_between_processes() -> None:
    first, second = Ids(), Ids()
    made = [first.next() for _ in range(10_000)]
    assert len(set(made)) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", made_id) for made_id in made)
    assert first.next()[:20] != second.next()[:20]
