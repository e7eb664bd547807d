"""Features on a pool of threads: the same rows as one at a time, and how many threads."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from detectors.evaluate import evaluate
from detectors.pool import Pool, available_cores
from detectors.profile import fit_profile
from detectors.reads import Reads
from detectors.settings import ModelSettings
from modeltap.config import MonitorConfig
from modeltap.configload import load_config
from modeltap.errors import ConfigError
from modeltap.schema import DetectorResult
from modeltap.store import SqlStore
from tests.detectors.test_evaluate import SCOPE, SETTINGS, make_requests, make_rows
from tests.detectors.test_runner import SETTINGS as STORE_SETTINGS
from tests.detectors.test_runner import at, prepare


def test_map_keeps_the_order_of_its_items_when_they_finish_out_of_order() -> None:
    first_may_finish = threading.Event()
    names: set[str] = set()

    def work(item: int) -> int:
        names.add(threading.current_thread().name)
        if item == 0:
            # The first item waits for the last, so results arrive out of order.
            assert first_may_finish.wait(timeout=30)
        if item == 3:
            first_may_finish.set()
        return item * 10

    with Pool.threads(4) as pool:
        assert pool.map(work, range(4)) == [0, 10, 20, 30]
    assert len(names) > 1
    assert all(name.startswith("modeltap-features") for name in names)


def test_one_worker_runs_in_the_calling_thread() -> None:
    with Pool.threads(1) as pool:
        assert (
            pool.map(lambda _: threading.current_thread().name, [1, 2])
            == [threading.current_thread().name] * 2
        )


def test_pooled_and_serial_evaluation_give_the_same_rows() -> None:
    rng = np.random.default_rng(7)
    reference = fit_profile(
        make_rows(20_000, rng), prediction_kind="categorical", segment_by="plan"
    )
    # Two versions, segments, numerical and categorical features, prediction and score:
    # every kind of task the drift and quality families put on the pool.
    rows = {"v1": make_rows(4000, rng, age_shift=3.0), "v2": make_rows(1500, rng)}
    requests = {"v1": make_requests(4000, rng, error_rate=0.01, latency=30)}
    profiles = {"v1": reference, "v2": reference}

    def run(workers: int) -> list[DetectorResult]:
        return list(
            evaluate(
                replace(SETTINGS, workers=workers),
                SCOPE,
                requests=requests,
                rows=rows,
                profiles=profiles,
            )
        )

    serial = run(1)
    assert {r.detector for r in serial} >= {"ks", "psi", "missing_ratio", "prediction_drift"}
    assert any(r.segment for r in serial)
    # More threads than cores, so tasks interleave; the rows must not notice.
    assert run(8) == serial
    assert run(3) == serial


def test_a_sliced_read_gives_each_version_the_rows_of_one_read(store: SqlStore) -> None:
    prepare(store)
    start, end = at(2), at(5)
    whole = Reads(store).versions(
        STORE_SETTINGS, start, end, features=["age", "plan"], labels=True, violations=True
    )
    # About 400 rows an hour: slices of 100 rows, three read at a time.
    sliced = Reads(store, readers=3, slice_rows=100).versions(
        STORE_SETTINGS,
        start,
        end,
        features=["age", "plan"],
        labels=True,
        violations=True,
        expected=1200,
    )
    assert sorted(sliced) == sorted(whole)
    # Counted in the rows' own read (per slice, then added): what the separate count gives.
    counted = store.type_violations(STORE_SETTINGS.model, start, end, STORE_SETTINGS.kinds)
    for version, rows in whole.items():
        other = sliced[version]
        assert len(other) == len(rows) > 0
        assert other.violations == rows.violations == counted[version]
        # Without an ORDER BY the database returns rows in any order: compare as sorted.
        assert np.array_equal(np.sort(other.numbers("age")), np.sort(rows.numbers("age")))
        assert other.counts("plan").as_dict() == rows.counts("plan").as_dict()
        assert np.array_equal(np.sort(other.ts), np.sort(rows.ts))  # type: ignore[arg-type]


def test_feature_workers_default_to_the_usable_cores_and_are_validated(
    tmp_path: Path,
) -> None:
    config = MonitorConfig.model_validate({"models": [{"name": "m", "task": "regression"}]})
    assert ModelSettings.from_config(config, "m").workers == available_cores()
    chosen = config.model_copy(
        update={"detectors": config.detectors.model_copy(update={"feature_workers": 3})}
    )
    assert ModelSettings.from_config(chosen, "m").workers == 3
    path = tmp_path / "monitor.yaml"
    path.write_text("detectors: {feature_workers: 0}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert "detectors.feature_workers: feature_workers must be a whole number from 1" in str(
        caught.value
    )


def test_a_cgroup_quota_caps_the_cores(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # one and a half CPUs: two threads, not more
    assert available_cores(cpu_max) == min(2, available_cores(tmp_path / "absent"))
    cpu_max.write_text("max 100000\n")
    assert available_cores(cpu_max) == available_cores(tmp_path / "absent")
