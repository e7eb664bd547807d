"""Turning statistics into ``DetectorResult`` rows: where they belong and how to read them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from detectors.stats.outcome import StatResult, beyond
from detectors.windows import Window
from modeltap.schema import DetectorResult, Direction, JsonValue


@dataclass(frozen=True, slots=True)
class Scope:
    """Model, version, window and segment a result describes, and when it was computed."""

    model: str
    version: str
    window: Window
    computed_at: datetime
    segment: str = ""
    partial: bool = False

    def for_version(self, version: str) -> Scope:
        return replace(self, version=version)

    def for_segment(self, segment: str) -> Scope:
        return replace(self, segment=segment)

    def metric(
        self,
        detector: str,
        value: float | None,
        *,
        threshold: float | None = None,
        direction: Direction = "higher",
        feature: str = "",
        size: int | None = None,
        details: Mapping[str, JsonValue] | None = None,
    ) -> DetectorResult:
        """A measured value; it alerts when strictly past ``threshold`` in ``direction``.

        No value (nothing to measure) is ``insufficient_data``, never a made-up number.
        """
        alert = (
            value is not None
            and threshold is not None
            and beyond(value, threshold, direction, inclusive=False)
        )
        return self._result(
            detector,
            feature=feature,
            status="ok" if value is not None else "insufficient_data",
            score=value,
            statistic=None,
            threshold=threshold,
            direction=direction,
            alert=alert,
            reference_size=None,
            current_size=size,
            details=details or {},
        )

    def stat(
        self,
        detector: str,
        result: StatResult,
        *,
        feature: str = "",
        details: Mapping[str, JsonValue] | None = None,
    ) -> DetectorResult:
        """A test's verdict: its score, threshold, direction and drifted flag as the alert."""
        return self._result(
            detector,
            feature=feature,
            status=result.status,
            score=result.score,
            statistic=result.statistic,
            threshold=result.threshold,
            direction=result.direction,
            alert=result.drifted,
            reference_size=result.reference_size,
            current_size=result.current_size,
            details={"test": result.test, **result.details, **(details or {})},
        )

    def _result(
        self,
        detector: str,
        *,
        feature: str,
        status: str,
        score: float | None,
        statistic: float | None,
        threshold: float | None,
        direction: Direction,
        alert: bool,
        reference_size: int | None,
        current_size: int | None,
        details: Mapping[str, JsonValue],
    ) -> DetectorResult:
        extra: dict[str, JsonValue] = {"partial": True} if self.partial else {}
        return DetectorResult(
            model=self.model,
            version=self.version,
            detector=detector,
            window_start=self.window.start,
            window_end=self.window.end,
            computed_at=self.computed_at,
            status="ok" if status == "ok" else "insufficient_data",
            score=score,
            threshold=threshold,
            direction=direction,
            alert=alert,
            feature=feature,
            segment=self.segment,
            statistic=statistic,
            reference_size=reference_size,
            current_size=current_size,
            details={**details, **extra},
        )
