"""What `monitor demo` has done so far: the line it prints when Ctrl-C stops it part-way, and
the short summary it ends on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Steps:
    """The steps finished, and the one in hand with how far it got.

    >>> steps = Steps(Path("demo.db"))
    >>> steps.doing("writing history")
    >>> steps.done("3 h of history (100 requests)")
    >>> steps.doing("live traffic", "12 of 50 requests sent")
    >>> for part in steps.interrupted().split("; "):
    ...     print(part)
    interrupted during live traffic (12 of 50 requests sent)
    done so far: 3 h of history (100 requests)
    nothing left running
    database: demo.db
    """

    database: Path
    finished: list[str] = field(default_factory=list)
    current: str = "start-up"
    detail: str = ""

    def doing(self, step: str, detail: str = "") -> None:
        self.current, self.detail = step, detail

    def progress(self, detail: str) -> None:
        self.detail = detail

    def done(self, what: str) -> None:
        self.finished.append(what)
        self.current, self.detail = "", ""

    def interrupted(self) -> str:
        """One line: the step that was stopped, and everything finished before it."""
        during = self.current or "the step after the last one"
        if self.detail:
            during += f" ({self.detail})"
        before = "; ".join(self.finished) or "nothing"
        return (
            f"interrupted during {during}; done so far: {before}; nothing left running; "
            f"database: {self.database}"
        )

    def summary(self, report: Path, openmetrics: Path) -> list[str]:
        """The lines the demo ends on: what it did and where each output is."""
        return [
            "done: " + "; ".join(self.finished),
            f"  report       {report}",
            f"  OpenMetrics  {openmetrics}",
            f"  database     {self.database} (storage.url sqlite:///{self.database})",
        ]
