"""The threads that score a window's features side by side, and how many this machine has.

Features (and segments' features) are independent, and the work per feature is numpy's:
sorting the window's column, merging it with the reference, histograms. numpy releases the
GIL for all of that, so threads use every core without copying a column anywhere. Processes
were measured too (``bench/drift_speed.py``, section 2): shipping a million-value column to
a worker and its sorted copy back costs about what the sort saves, so threads win.

``Pool.map`` returns results in the order of its items, whatever order they finish in, and
every task is a pure function of its item: a pooled run gives exactly the serial run's rows.
A task must not map on the pool it runs in (it would wait for itself); only the family's
top level maps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


class Pool:
    """Ordered ``map`` over an executor, or in the calling thread without one.

    >>> Pool().map(lambda x: x * x, [1, 2, 3])
    [1, 4, 9]
    >>> with Pool.threads(2) as pool:
    ...     pool.map(str.upper, ["a", "b"])
    ['A', 'B']
    """

    __slots__ = ("_executor",)

    def __init__(self, executor: Executor | None = None) -> None:
        self._executor = executor

    @classmethod
    @contextmanager
    def threads(cls, workers: int) -> Iterator[Pool]:
        """A pool of ``workers`` threads for one window, shut down when the block ends."""
        if workers <= 1:
            yield cls()
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="modeltap-features") as executor:
            yield cls(executor)

    def map(self, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
        chosen = list(items)
        if self._executor is None or len(chosen) < 2:
            return [work(item) for item in chosen]
        return list(self._executor.map(work, chosen))


SERIAL = Pool()


def available_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPU cores this process may use: its affinity, capped by a cgroup v2 CPU quota.

    A container limited to 2 CPUs on a 64-core node sees 64 cores in ``os.cpu_count()``;
    its quota (``cpu.max``: "200000 100000") says 2, and more threads than that only queue.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        return max(cores, 1)
    if quota == "max":
        return max(cores, 1)
    return max(1, min(cores, math.ceil(int(quota) / int(period))))
