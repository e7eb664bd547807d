"""Two detector replicas on the real PostgreSQL never compute the same window twice."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from detectors import fitting
from detectors.runner import JobOutcome, Runner
from detectors.settings import ModelSettings
from modeltap.schema import FAMILIES
from modeltap.store import SqlStore
from tests.detectors.traffic import MODEL, Traffic, config, write

T0 = datetime(2026, 11, 25, tzinfo=UTC)
SETTINGS = ModelSettings.from_config(config(), MODEL)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_two_replicas_share_the_jobs_and_compute_each_window_once(postgres_database: str) -> None:
    setup = SqlStore.open(postgres_database, migrate=True)
    write(setup, [Traffic(at(0), at(8), per_hour=600, seed=3)])
    write(setup, [Traffic(at(4), at(8), per_hour=100, version="v2", seed=4)])
    profile = fitting.fit_rows(
        SETTINGS, fitting.rows_from_store(setup, SETTINGS, at(0), at(2), None)
    )
    fitting.save(setup, SETTINGS, profile, version="", source="test", now=at(2))

    outcomes: dict[str, list[JobOutcome]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def replica(owner: str) -> None:
        store = SqlStore.open(postgres_database)
        runner = Runner(store, [SETTINGS], owner=owner)
        jobs = runner.jobs() if owner == "a" else runner.jobs()[::-1]
        start.wait()
        # Every replica runs every job several times for the same moments (a clock on a
        # window boundary, so no partial window is recomputed by design).
        for now in (at(6), at(6), at(8), at(8)):
            outcomes[owner] += runner.run_all(now, jobs)
        store.close()

    threads = [threading.Thread(target=replica, args=(owner,)) for owner in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads)

    every = outcomes["a"] + outcomes["b"]
    assert [o for o in every if o.status == "error"] == []
    computed = Counter((o.detector, w) for o in every if o.status == "ok" for w in o.windows)
    assert set(computed.values()) == {1}, [key for key, n in computed.items() if n > 1]
    for detector in FAMILIES:
        windows = sorted(w.start for d, w in computed if d == detector)
        assert windows == [at(h) for h in range(8)], detector
        records = setup.window_records(MODEL, detector, T0)
        assert [r.computations for r in records] == [1] * 8, detector
    # Both replicas did real work, and each skipped jobs the other owned at the time. (Each
    # starts at the other end of the job list, so the first job of each is its own.)
    owners = {r.owner for d in FAMILIES for r in setup.window_records(MODEL, d, T0)}
    assert owners == {"a", "b"}
    assert any(o.status == "skipped" for o in every)
    setup.close()
