"""A model's fitted reference: every feature, the prediction, the score, per-segment copies,
and the estimators' states (``detectors.estimators``).

Fit once (``monitor reference set``), store as JSON, score every window against it: windows
never re-read raw reference data.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from detectors.estimators import Estimators
from detectors.rows import Rows, category_counts, coerce_numerical
from detectors.stats.reference import (
    ColumnReference,
    Kind,
    NumericalReference,
    column_from_json,
    fit_categorical,
    fit_numerical,
)
from detectors.stats.samples import FloatArray
from modeltap.config import DriftConfig, ReferenceConfig
from modeltap.errors import InputError

FORMAT = 1


# The defaults are the configuration's own, read from its fields so there is one place to
# change them (ReferenceConfig says why each is what it is).
_DRIFT = DriftConfig.model_fields
_REFERENCE = ReferenceConfig.model_fields


@dataclass(frozen=True, slots=True)
class ProfileSettings:
    """Sizes of what a profile keeps (``detectors.reference`` in the configuration)."""

    psi_bins: int = _DRIFT["psi_bins"].default
    sample_size: int = _REFERENCE["sample_size"].default
    max_categories: int = _REFERENCE["max_categories"].default
    segment_sample_size: int = _REFERENCE["segment_sample_size"].default
    max_segments: int = _REFERENCE["max_segments"].default


@dataclass(frozen=True)
class Profile:
    """The reference of one model (and version): per-column references and segments."""

    rows: int
    columns: Mapping[str, ColumnReference]
    prediction: ColumnReference | None = None
    score: NumericalReference | None = None
    segment_by: str | None = None
    segments: Mapping[str, Profile] = field(default_factory=dict)
    settings: ProfileSettings = ProfileSettings()
    # The estimation and multivariate states (None in a profile fitted before them).
    estimators: Estimators | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible mapping; ``Profile.from_json`` reads it back."""
        return {
            "format": FORMAT,
            "rows": self.rows,
            "settings": {
                "psi_bins": self.settings.psi_bins,
                "sample_size": self.settings.sample_size,
                "max_categories": self.settings.max_categories,
                "segment_sample_size": self.settings.segment_sample_size,
                "max_segments": self.settings.max_segments,
            },
            "columns": {name: column.to_json() for name, column in self.columns.items()},
            "prediction": self.prediction.to_json() if self.prediction else None,
            "score": self.score.to_json() if self.score else None,
            "segment_by": self.segment_by,
            "segments": {value: segment.to_json() for value, segment in self.segments.items()},
            "estimators": self.estimators.to_json() if self.estimators else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        """The profile ``to_json`` stored; an unreadable one is an error that says what to do."""
        try:
            return cls._from_json(data)
        except InputError:
            raise
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise InputError(
                f"the stored reference profile cannot be read ({type(error).__name__}: {error}); "
                "fit it again with `monitor reference set`"
            ) from error

    @classmethod
    def _from_json(cls, data: Mapping[str, Any]) -> Profile:
        if data.get("format") != FORMAT:
            raise InputError(
                f"reference profile format {data.get('format')!r} is not {FORMAT}; "
                "fit it again with `monitor reference set`"
            )
        prediction = data.get("prediction")
        score = data.get("score")
        estimators = data.get("estimators")
        return cls(
            rows=int(data["rows"]),
            columns={name: column_from_json(item) for name, item in data["columns"].items()},
            prediction=column_from_json(prediction) if prediction else None,
            score=NumericalReference.from_json(score) if score else None,
            segment_by=data.get("segment_by"),
            segments={value: cls._from_json(item) for value, item in data["segments"].items()},
            settings=ProfileSettings(**data["settings"]),
            estimators=Estimators.from_json(estimators) if estimators else None,
        )


def fit_profile(
    rows: Rows,
    *,
    prediction_kind: Kind | None = None,
    segment_by: str | None = None,
    settings: ProfileSettings = ProfileSettings(),
) -> Profile:
    """Fit every feature of ``rows`` (and its prediction and score, when present).

    >>> import pandas as pd
    >>> rows = Rows(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), {"x": "numerical"})
    >>> fit_profile(rows).columns["x"].maximum
    3.0
    """
    profile = _fit(rows, prediction_kind, settings, settings.sample_size)
    if segment_by is None:
        return profile
    segments = {
        value: _fit(rows.select(mask), prediction_kind, settings, settings.segment_sample_size)
        for value, mask in rows.segments(segment_by, settings.max_segments)
    }
    return Profile(
        rows=profile.rows,
        columns=profile.columns,
        prediction=profile.prediction,
        score=profile.score,
        segment_by=segment_by,
        segments=segments,
        settings=settings,
    )


def _fit(
    rows: Rows, prediction_kind: Kind | None, settings: ProfileSettings, sample: int
) -> Profile:
    columns = {
        name: _fit_column(
            rows.features[name].to_numpy(), kind, rows.violations.get(name, 0), settings, sample
        )
        for name, kind in rows.kinds.items()
    }
    prediction = None
    if rows.prediction is not None and prediction_kind is not None:
        prediction_values: Any = rows.prediction
        violations = 0
        if prediction_kind == "numerical":
            prediction_values, violations = coerce_numerical(
                pd.Series(rows.prediction, dtype=object)
            )
        prediction = _fit_column(prediction_values, prediction_kind, violations, settings, sample)
    score = None
    if rows.score is not None and np.isfinite(rows.score).any():
        score = fit_numerical(rows.score, violations=0, bins=settings.psi_bins, sample_size=sample)
    return Profile(len(rows), columns, prediction, score, settings=settings)


def _fit_column(
    values: Any, kind: Kind, violations: int, settings: ProfileSettings, sample: int
) -> ColumnReference:
    if kind == "numerical":
        numbers: FloatArray = np.asarray(values, dtype=np.float64)
        return fit_numerical(
            numbers, violations=violations, bins=settings.psi_bins, sample_size=sample
        )
    return fit_categorical(
        category_counts(values).as_dict(),
        rows=len(values),
        violations=violations,
        max_categories=settings.max_categories,
    )
