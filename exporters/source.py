"""What the exporter reads, and what it knows from the configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from modeltap.config import MonitorConfig
from modeltap.schema import FAMILIES, DetectorRun, LatestValue

Clock = Callable[[], datetime]


class ResultSource(Protocol):
    """The store's reads a scrape needs (``SqlStore`` is one)."""

    def latest_values(self, since: datetime) -> list[LatestValue]:
        """Per (model, version, detector, feature), the newest unsegmented value since then."""
        ...

    def runs_since(self, since: datetime) -> list[DetectorRun]:
        """Run records started after ``since``, oldest first."""
        ...


@dataclass(frozen=True)
class ExportPlan:
    """The exporter's settings, taken from the configuration once.

    >>> from modeltap.config import MonitorConfig
    >>> x = {"name": "x", "type": "numerical"}
    >>> model = {"name": "m", "task": "regression", "features": [x]}
    >>> plan = ExportPlan.from_config(MonitorConfig.model_validate({"models": [model]}))
    >>> plan.jobs[:2], plan.lookback
    ((('m', 'operations'), ('m', 'quality')), datetime.timedelta(seconds=7500))
    """

    lookback: timedelta
    max_features: int = 50
    jobs: Sequence[tuple[str, str]] = ()
    feature_order: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: MonitorConfig) -> ExportPlan:
        return cls(
            lookback=config.export_lookback,
            max_features=config.exporter.max_features_per_model,
            jobs=tuple((model.name, family) for model in config.models for family in FAMILIES),
            feature_order={
                model.name: tuple(feature.name for feature in model.features)
                for model in config.models
            },
        )
