"""The multivariate family: drift of the numerical features taken together.

``reconstruction_error`` is the window's mean PCA reconstruction error against the
reference's components (NannyML's method); its threshold is the upper bound of the band the
reference's chunks kept (mean ± 3 standard deviations), or ``reconstruction_threshold``.
``domain_classifier`` is the ROC AUC of a classifier telling the reference's sampled rows
from the window's (Evidently's method), drifting above ``domain_threshold``. Both are
distances: higher means drift. A correlation the window breaks raises them even when every
feature alone still matches its reference.
"""

from __future__ import annotations

import numpy as np

from detectors.emit import Scope
from detectors.estimators import Estimators
from detectors.families.estimation import NO_PROFILE, REFIT
from detectors.profile import Profile
from detectors.rows import Rows
from detectors.settings import ModelSettings
from detectors.stats.multivariate import (
    BLOCK_ROWS,
    ReconstructionProfile,
    domain_classifier,
    judge_errors,
    reconstruction_errors,
)
from detectors.stats.samples import FloatArray
from modeltap.schema import DetectorResult, JsonValue


def results(
    scope: Scope, rows: Rows, profile: Profile | None, settings: ModelSettings
) -> list[DetectorResult]:
    """The configured multivariate figures of the window (none when both are off)."""
    wanted = settings.multivariate
    methods = [
        name
        for name, on in (
            ("reconstruction_error", wanted.reconstruction),
            ("domain_classifier", wanted.domain_classifier),
        )
        if on
    ]
    estimators = profile.estimators if profile is not None else None
    if profile is None or estimators is None:
        reason = NO_PROFILE if profile is None else REFIT
        return [_missing(scope, name, reason) for name in methods]
    # The whole matrix only for the classifier; otherwise the window is scanned in blocks
    # (a million rows of 8 features: a 64 MB matrix at the pass's peak memory).
    matrix = estimators.matrix(rows) if wanted.domain_classifier else None
    state = estimators.reconstruction if wanted.reconstruction else None
    complete, errors = _scan(estimators, rows, matrix, state)
    found: list[DetectorResult] = []
    for name in methods:
        note = estimators.notes.get(name)
        if note is not None:
            found.append(_missing(scope, name, note))
        elif complete < wanted.min_rows:
            found.append(
                _missing(
                    scope,
                    name,
                    f"{complete} rows with every numerical feature; multivariate drift needs "
                    f"at least {wanted.min_rows} (detectors.multivariate.min_rows)",
                    size=complete,
                )
            )
        elif name == "reconstruction_error":
            found.append(_reconstruction(scope, errors, state, settings))
        else:
            assert matrix is not None  # built above whenever the classifier is on
            found.append(_domain(scope, matrix, estimators.sample, settings))
    return found


def _scan(
    estimators: Estimators,
    rows: Rows,
    matrix: FloatArray | None,
    state: ReconstructionProfile | None,
) -> tuple[int, FloatArray]:
    """How many rows have every numerical feature, and each row's reconstruction error
    (none without ``state``), a block of rows at a time: from ``matrix``, or built per block
    when it is None. The blocks are ``reconstruction_errors``' own, so the errors are the
    ones it gives for the whole matrix."""
    complete = 0
    errors: list[FloatArray] = []
    for start in range(0, len(rows), BLOCK_ROWS):
        stop = start + BLOCK_ROWS
        block = matrix[start:stop] if matrix is not None else estimators.matrix(rows, start, stop)
        if block.size:
            complete += int(np.count_nonzero(np.isfinite(block).all(axis=1)))
        if state is not None:
            errors.append(reconstruction_errors(state, block))
    return complete, np.concatenate(errors) if errors else np.empty(0)


def _reconstruction(
    scope: Scope,
    errors: FloatArray,
    state: ReconstructionProfile | None,
    settings: ModelSettings,
) -> DetectorResult:
    if state is None:
        return _missing(scope, "reconstruction_error", REFIT)
    estimate = judge_errors(state, errors)
    fixed = settings.multivariate.reconstruction_threshold
    details: dict[str, JsonValue] = {
        "method": "reconstruction_error",
        "components": len(state.components),
        "threshold_source": "configured" if fixed is not None else "reference_band",
        "band_lower": state.band.lower,
        "band_upper": state.band.upper,
        "breach": estimate.breach,
    }
    if estimate.sampling_error is not None:
        details["sampling_error"] = estimate.sampling_error
    return scope.metric(
        "reconstruction_error",
        estimate.value,
        threshold=fixed if fixed is not None else state.band.upper,
        direction="higher",
        size=estimate.size,
        details=details,
    )


def _domain(
    scope: Scope,
    matrix: np.typing.NDArray[np.float64],
    sample: np.typing.NDArray[np.float64] | None,
    settings: ModelSettings,
) -> DetectorResult:
    if sample is None:
        return _missing(scope, "domain_classifier", REFIT)
    result = domain_classifier(sample, matrix, threshold=settings.multivariate.domain_threshold)
    return scope.stat("domain_classifier", result, details={"method": "domain_classifier"})


def _missing(scope: Scope, detector: str, reason: str, size: int | None = None) -> DetectorResult:
    return scope.metric(detector, None, direction="higher", size=size, details={"reason": reason})
