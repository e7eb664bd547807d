"""What every statistical test returns: a frozen verdict that says which way is worse."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from modeltap.schema import Direction, JsonValue

TestStatus = Literal["ok", "insufficient_data"]


@dataclass(frozen=True, slots=True)
class StatResult:
    """One test on one column: score against threshold, and the direction that means drift.

    ``score`` is what the threshold applies to (a p-value for tests, the value for
    distances); ``statistic`` is the test statistic behind a p-value (KS D, chi-square,
    z), or None for distances. With ``status="insufficient_data"`` the score is None and
    ``drifted`` is False: no number is made up for samples too small to judge.

    >>> StatResult("psi", "ok", 0.3, None, 0.2, "higher", True, 1000, 500).drifted
    True
    """

    test: str
    status: TestStatus
    score: float | None
    statistic: float | None
    threshold: float
    direction: Direction
    drifted: bool
    reference_size: int
    current_size: int
    details: Mapping[str, JsonValue] = field(default_factory=dict)


def beyond(score: float, threshold: float, direction: Direction, *, inclusive: bool) -> bool:
    """Whether ``score`` is on the drifting side of ``threshold``.

    >>> beyond(0.01, 0.05, "lower", inclusive=False)
    True
    >>> beyond(0.1, 0.1, "higher", inclusive=True)
    True
    """
    if direction == "lower":
        return score <= threshold if inclusive else score < threshold
    return score >= threshold if inclusive else score > threshold


def insufficient(
    test: str,
    *,
    threshold: float,
    direction: Direction,
    reference_size: int,
    current_size: int,
    reason: str,
) -> StatResult:
    """The result for samples below the configured minimum sizes."""
    return StatResult(
        test=test,
        status="insufficient_data",
        score=None,
        statistic=None,
        threshold=threshold,
        direction=direction,
        drifted=False,
        reference_size=reference_size,
        current_size=current_size,
        details={"reason": reason},
    )
