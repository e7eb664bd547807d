"""Run health of every detector job, from its recent run records. Pure: runs in, figures out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from modeltap.schema import DetectorRun


@dataclass(frozen=True, slots=True)
class JobHealth:
    """One (model, detector) job over the lookback: its last run, last success, failures."""

    model: str
    detector: str
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_started_at: datetime | None = None
    last_duration_ms: float | None = None
    last_success_as_of: datetime | None = None

    def staleness_seconds(self, now: datetime, since: datetime) -> float:
        """Seconds since the newest successful run; the whole lookback when none is in it."""
        newest = self.last_success_as_of or since
        return max(0.0, (now - newest).total_seconds())


def job_health(
    runs: Iterable[DetectorRun], jobs: Sequence[tuple[str, str]] = ()
) -> list[JobHealth]:
    """Health per job: configured ``jobs`` always appear, even with no run to show.

    ``runs`` must be oldest first, as the store returns them.

    >>> from datetime import UTC, datetime, timedelta
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> run = lambda s, status: DetectorRun("m", "drift", t + timedelta(minutes=s), 12.0,
    ...                                     status, t + timedelta(minutes=s))
    >>> health = job_health([run(0, "ok"), run(5, "error"), run(10, "error")])[0]
    >>> health.runs, health.failures, health.consecutive_failures, health.last_success_as_of == t
    (3, 2, 2, True)
    """
    found: dict[tuple[str, str], JobHealth] = {job: JobHealth(*job) for job in jobs}
    for run in runs:
        key = (run.model, run.detector)
        now = found.get(key) or JobHealth(*key)
        failed = run.status == "error"
        found[key] = JobHealth(
            model=run.model,
            detector=run.detector,
            runs=now.runs + 1,
            failures=now.failures + failed,
            consecutive_failures=now.consecutive_failures + 1 if failed else 0,
            last_started_at=run.started_at,
            last_duration_ms=run.duration_ms,
            last_success_as_of=now.last_success_as_of if failed else run.as_of,
        )
    return [found[key] for key in sorted(found)]
