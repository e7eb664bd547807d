"""Fitting a model's reference profile from stored traffic or from a table, and storing it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pandas as pd

from detectors.estimators import fit_estimators
from detectors.offline import require_features
from detectors.profile import Profile, fit_profile
from detectors.rows import (
    Rows,
    class_score_text,
    coerce_categorical,
    rows_from_frame,
    typed_features,
)
from detectors.settings import ModelSettings
from modeltap.errors import InputError
from modeltap.schema import ReferenceProfile
from modeltap.store import FEATURE_PREFIX, Store


def fit_rows(settings: ModelSettings, rows: Rows) -> Profile:
    """The profile of ``rows`` with the model's settings.

    Refuses a reference the drift tests could not use: fewer rows than
    ``min_reference_size``, or a feature without one usable value (every test of it would
    say "insufficient data" in every window, forever).
    """
    least = settings.drift.min_reference_size
    if len(rows) == 0:
        raise InputError(f"the reference for model {settings.model!r} has no rows")
    if len(rows) < least:
        raise InputError(
            f"the reference for model {settings.model!r} has {len(rows)} rows and drift needs "
            f"detectors.drift.min_reference_size = {least}; fit it on more rows"
        )
    profile = fit_profile(
        rows,
        prediction_kind=settings.prediction_kind,
        segment_by=settings.segment_by,
        settings=settings.profile,
    )
    empty = [name for name, column in profile.columns.items() if column.size == 0]
    if empty:
        raise InputError(
            f"feature(s) {', '.join(empty)} of model {settings.model!r} have no usable value in "
            f"the reference's {len(rows)} rows (all missing, or not of the configured type)"
        )
    return replace(profile, estimators=fit_estimators(rows, settings))


def rows_from_table(
    settings: ModelSettings,
    frame: pd.DataFrame,
    *,
    prediction: str | None = "prediction",
    score: str | None = "score",
    label: str | None = "label",
    what: str = "file",
) -> Rows:
    """Rows from a user's table (CSV, Parquet, JSON lines): a column for every feature,
    which ``what`` (the file, for the error) must have; the outcome columns when present
    (a reference's labels are what the performance estimators are fitted on)."""
    if not settings.kinds:
        raise InputError(f"model {settings.model!r} has no features configured")
    require_features(settings.model, list(settings.kinds), frame, what)
    features, violations = typed_features(frame, settings.kinds)
    typed = pd.DataFrame({FEATURE_PREFIX + name: features[name] for name in settings.kinds})
    if prediction is not None and prediction in frame:
        typed["prediction"] = coerce_categorical(frame[prediction])[0]
    if score is not None and score in frame:
        typed["score"] = pd.to_numeric(frame[score], errors="coerce")
    if label is not None and label in frame:
        typed["label"] = coerce_categorical(frame[label])[0]
    if score is not None:
        class_scores = class_score_text(frame, settings.classes, f"{score}_")
        if class_scores is not None:
            typed["class_scores"] = class_scores
    return rows_from_frame(typed, settings.kinds, prefix=FEATURE_PREFIX, violations=violations)


def rows_from_store(
    store: Store, settings: ModelSettings, start: datetime, end: datetime, version: str | None
) -> Rows:
    """Rows the model served between ``start`` and ``end`` (of one version, if given), with
    the labels that have arrived for them."""
    frame = store.read_rows(
        settings.model,
        start,
        end,
        numerical=[name for name, kind in settings.kinds.items() if kind == "numerical"],
        categorical=[name for name, kind in settings.kinds.items() if kind == "categorical"],
        with_labels=True,
        class_scores=bool(settings.classes),
    )
    violations = store.type_violations(settings.model, start, end, settings.kinds)
    if version is None:
        totals: dict[str, int] = {}
        for counts in violations.values():
            for name, count in counts.items():
                totals[name] = totals.get(name, 0) + count
        return rows_from_frame(frame, settings.kinds, prefix=FEATURE_PREFIX, violations=totals)
    rows = rows_from_frame(frame, settings.kinds, prefix=FEATURE_PREFIX)
    found = rows.by_version(violations).get(version)
    if found is None:
        raise InputError(
            f"model {settings.model!r} served no rows as version {version!r} between "
            f"{start.isoformat()} and {end.isoformat()}"
        )
    return found


def save(
    store: Store,
    settings: ModelSettings,
    profile: Profile,
    *,
    version: str,
    source: str,
    now: datetime,
) -> ReferenceProfile:
    """Store ``profile`` as the newest reference of (model, version)."""
    return store.put_reference(
        settings.model, version, profile.to_json(), source=source, created_at=now
    )
