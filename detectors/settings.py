"""Everything the detectors need to know about one model, taken from the configuration once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from detectors.pool import available_cores
from detectors.profile import ProfileSettings
from detectors.stats.reference import Kind
from detectors.stats.registry import PsiMode, Registry, default_registry
from modeltap.config import ModelConfig, MonitorConfig

Task = Literal["classification", "regression"]


@dataclass(frozen=True, slots=True)
class DriftSettings:
    """How drift is judged; built once from ``detectors.drift`` in the configuration."""

    numerical_method: str = "psi"
    categorical_method: str = "psi"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    psi_mode: PsiMode = "quantile"
    dataset_drift_share: float = 0.5
    min_reference_size: int = 30
    min_current_size: int = 100

    def method(self, kind: Kind) -> str:
        return self.numerical_method if kind == "numerical" else self.categorical_method


@dataclass(frozen=True, slots=True)
class EstimationSettings:
    """How performance is estimated before labels (``detectors.estimation``)."""

    enabled: bool = True
    min_rows: int = 100
    chunks: int = 10
    # Fixed thresholds per metric; a metric not named is judged by the reference's band.
    thresholds: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MultivariateSettings:
    """How the features are judged together (``detectors.multivariate``)."""

    reconstruction: bool = True
    domain_classifier: bool = False
    variance: float = 0.65
    reconstruction_threshold: float | None = None
    domain_threshold: float = 0.55
    sample_size: int = 2000
    min_rows: int = 100
    chunks: int = 10


@dataclass(frozen=True)
class ModelSettings:
    """One model's features, task and thresholds, as plain values.

    >>> from modeltap.config import MonitorConfig
    >>> config = MonitorConfig.model_validate({"models": [{"name": "m", "task": "regression",
    ...     "features": [{"name": "x", "type": "numerical"}]}]})
    >>> ModelSettings.from_config(config, "m").kinds
    {'x': 'numerical'}
    """

    model: str
    task: Task
    kinds: Mapping[str, Kind]
    positive_class: str | None = None
    # A multiclass classifier's classes, in the order of its rows' class probabilities.
    classes: tuple[str, ...] = ()
    segment_by: str | None = None
    thresholds: Mapping[str, float | None] = field(default_factory=dict)
    drift: DriftSettings = field(default_factory=DriftSettings)
    profile: ProfileSettings = field(default_factory=ProfileSettings)
    estimation: EstimationSettings = field(default_factory=EstimationSettings)
    multivariate: MultivariateSettings = field(default_factory=MultivariateSettings)
    min_rows: int = 30
    ab_alpha: float = 0.05
    window: timedelta = timedelta(hours=1)
    interval: timedelta = timedelta(minutes=5)
    label_horizon: timedelta = timedelta(days=7)
    registry: Registry = field(default_factory=default_registry)
    # Threads scoring a window's features side by side; 1 scores them in the calling thread.
    workers: int = 1

    @property
    def prediction_kind(self) -> Kind:
        """Predictions drift as categories for classifiers and as numbers for regressors."""
        return "categorical" if self.task == "classification" else "numerical"

    def threshold(self, name: str) -> float | None:
        return self.thresholds.get(name)

    @classmethod
    def from_config(cls, config: MonitorConfig, name: str) -> ModelSettings:
        return cls.from_model(config, config.require_model(name))

    @classmethod
    def from_model(cls, config: MonitorConfig, model: ModelConfig) -> ModelSettings:
        detectors = config.detectors
        drift = detectors.drift
        reference = detectors.reference
        estimation, multivariate = detectors.estimation, detectors.multivariate
        return cls(
            model=model.name,
            task=model.task,
            kinds={feature.name: feature.type for feature in model.features},
            positive_class=None if model.positive_class is None else _text(model.positive_class),
            classes=tuple(_text(value) for value in model.classes or ()),
            segment_by=model.segment_by,
            thresholds=config.thresholds_for(model.name).model_dump(),
            drift=DriftSettings(
                numerical_method=drift.numerical_method,
                categorical_method=drift.categorical_method,
                thresholds=dict(drift.method_thresholds),
                psi_mode=drift.psi_mode,
                dataset_drift_share=drift.dataset_drift_share,
                min_reference_size=drift.min_reference_size,
                min_current_size=drift.min_current_size,
            ),
            profile=ProfileSettings(
                psi_bins=drift.psi_bins,
                sample_size=reference.sample_size,
                max_categories=reference.max_categories,
                segment_sample_size=reference.segment_sample_size,
                max_segments=reference.max_segments,
            ),
            estimation=EstimationSettings(
                enabled=estimation.enabled,
                min_rows=estimation.min_rows,
                chunks=estimation.chunks,
                thresholds=dict(estimation.thresholds),
            ),
            multivariate=MultivariateSettings(
                reconstruction=multivariate.reconstruction,
                domain_classifier=multivariate.domain_classifier,
                variance=multivariate.variance,
                reconstruction_threshold=multivariate.reconstruction_threshold,
                domain_threshold=multivariate.domain_threshold,
                sample_size=multivariate.sample_size,
                min_rows=multivariate.min_rows,
                # The reconstruction band is cut from as many reference chunks as estimates'.
                chunks=estimation.chunks,
            ),
            min_rows=detectors.min_rows,
            ab_alpha=detectors.ab_alpha,
            window=detectors.window,
            interval=detectors.interval,
            label_horizon=detectors.label_horizon,
            workers=detectors.feature_workers or available_cores(),
        )


def _text(value: str | int) -> str:
    # Labels and predictions are compared as JSON text; booleans are written as JSON writes them.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
