"""Drift that looks at the features together: PCA reconstruction error and a domain classifier.

**Reconstruction error** (NannyML's ``DataReconstructionDriftCalculator``,
nannyml/drift/multivariate/data_reconstruction/calculator.py): missing values take the
reference mean, each feature is standardised with the reference mean and (population)
deviation, and PCA on the standardised reference keeps the fewest components whose explained
variance exceeds ``variance`` (scikit-learn's rule for a fractional ``n_components``). A
window's figure is the mean Euclidean distance between its standardised rows and their
reconstruction from those components; its sampling error is the rows' deviation (ddof=1) over
sqrt(n). The band is the reference chunks' mean ± 3 standard deviations, its lower bound
dropped when under 0. Correlations the reference had and the window breaks raise the error
even when every feature alone looks unchanged. Categorical features must arrive encoded as
numbers (NannyML uses their frequencies).

PCA is a thin SVD in numpy (O(n·d²)), as scikit-learn's full solver does, so the fitted
state is a handful of vectors that serialise to JSON.

**Domain classifier** (Evidently 0.7's ``ModelDriftMethod``, the default of
``EmbeddingsDrift``, in evidently/legacy/metrics/data_drift/embedding_drift_methods.py):
reference rows are labelled 1 and window rows 0, the union is split in half
(``train_test_split(test_size=0.5, shuffle=True, random_state=42)``), an
``SGDClassifier(loss="log_loss", random_state=42)`` learns on one half, and the score is its
ROC AUC on the other. Drift means ROC AUC > 0.55, strictly; with ``bootstrap`` the threshold
is instead the 95th percentile of the ROC AUC of 100 random scorings of the held-out half
(seeds 0 to 99), and Evidently bootstraps when the reference has fewer than 1000 rows.
scikit-learn is an optional extra here, used for the very splitter and classifier Evidently
runs, so the scores are Evidently's own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.stats.bands import Band, Estimate, chunk_bounds, default_chunk_size, reference_band
from detectors.stats.outcome import StatResult, beyond, insufficient
from detectors.stats.samples import FloatArray
from modeltap.extras import require
from modeltap.schema import JsonValue

DEFAULT_VARIANCE = 0.65
DOMAIN_THRESHOLD = 0.55
BOOTSTRAP_BELOW_ROWS = 1000


@dataclass(frozen=True, slots=True)
class ReconstructionProfile:
    """The reference's standardisation, its principal components and the band of its chunks."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    centre: tuple[float, ...]
    components: tuple[tuple[float, ...], ...]
    band: Band
    reference_size: int
    chunk_size: int

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "mean": list(self.mean),
            "scale": list(self.scale),
            "centre": list(self.centre),
            "components": [list(row) for row in self.components],
            "band": self.band.to_json(),
            "reference_size": self.reference_size,
            "chunk_size": self.chunk_size,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> ReconstructionProfile:
        return cls(
            mean=tuple(data["mean"]),
            scale=tuple(data["scale"]),
            centre=tuple(data["centre"]),
            components=tuple(tuple(row) for row in data["components"]),
            band=Band.from_json(data["band"]),
            reference_size=int(data["reference_size"]),
            chunk_size=int(data["chunk_size"]),
        )


def fit_reconstruction(
    features: FloatArray, *, variance: float = DEFAULT_VARIANCE, chunk_size: int | None = None
) -> ReconstructionProfile:
    """Standardise the reference, keep the components explaining more than ``variance``, and
    learn the band of its chunks' reconstruction errors."""
    if not 0.0 < variance < 1.0:
        raise ValueError("variance is the share of variance to keep, between 0 and 1")
    matrix = np.asarray(features, dtype=np.float64)
    mean = np.nanmean(matrix, axis=0)
    filled = np.where(np.isnan(matrix), mean, matrix)
    scale = np.std(filled, axis=0)
    # scikit-learn's StandardScaler leaves a constant feature unscaled rather than divide by 0.
    scale = np.where(
        scale < 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean)), 1.0, scale
    )
    standard = (filled - mean) / scale
    centre = standard.mean(axis=0)
    _, singular, rows = np.linalg.svd(standard - centre, full_matrices=False)
    total = float(np.sum(singular**2))
    if total == 0.0:
        raise ValueError(
            "no numerical feature varies in the reference, so there is no component to keep"
        )
    explained = singular**2 / total
    kept = min(
        int(np.searchsorted(np.cumsum(explained), variance, side="right")) + 1, rows.shape[0]
    )
    partial = ReconstructionProfile(
        tuple(mean.tolist()),
        tuple(scale.tolist()),
        tuple(centre.tolist()),
        tuple(tuple(row) for row in rows[:kept].tolist()),
        Band(None, None),
        int(matrix.shape[0]),
        chunk_size or default_chunk_size(int(matrix.shape[0])),
    )
    errors = reconstruction_errors(partial, matrix)
    chunk_means = [
        float(np.mean(errors[a:b])) for a, b in chunk_bounds(errors.size, partial.chunk_size)
    ]
    band = reference_band(chunk_means, lower_limit=0.0, drop_beyond_limit=True)
    return ReconstructionProfile(
        partial.mean,
        partial.scale,
        partial.centre,
        partial.components,
        band,
        partial.reference_size,
        partial.chunk_size,
    )


# Rows per block of ``reconstruction_errors``; callers that build a window's matrix in blocks
# use the same bounds, so every block is computed exactly as one whole matrix's would be.
BLOCK_ROWS = 65_536


def reconstruction_errors(profile: ReconstructionProfile, features: FloatArray) -> FloatArray:
    """Each row's distance from its reconstruction, in standardised units."""
    matrix = np.asarray(features, dtype=np.float64)
    mean = np.asarray(profile.mean)
    scale = np.asarray(profile.scale)
    centre = np.asarray(profile.centre)
    components = np.asarray(profile.components, dtype=np.float64)
    errors = np.empty(matrix.shape[0], dtype=np.float64)
    # In blocks of rows: each row's error is its own, and the four full-size temporaries a
    # whole window would need (about 250 MB for a million rows of 8 features) stay small.
    for start in range(0, matrix.shape[0], BLOCK_ROWS):
        rows = matrix[start : start + BLOCK_ROWS]
        centred = (np.where(np.isnan(rows), mean, rows) - mean) / scale - centre
        residual = centred - (centred @ components.T) @ components
        errors[start : start + rows.shape[0]] = np.linalg.norm(residual, axis=1)
    return errors


def reconstruction_error(profile: ReconstructionProfile, features: FloatArray) -> Estimate:
    """The window's mean reconstruction error, judged by the reference band (higher is worse).

    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=(1000, 3)) @ np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1.0]])
    >>> profile = fit_reconstruction(reference)
    >>> len(profile.components)
    2
    >>> shuffled = reference.copy()
    >>> shuffled[:, 1] = rng.permutation(shuffled[:, 1])  # breaks the correlation, not the column
    >>> [reconstruction_error(profile, rows).alert for rows in (shuffled, reference)]
    [True, False]
    """
    return judge_errors(profile, reconstruction_errors(profile, features))


def judge_errors(profile: ReconstructionProfile, errors: FloatArray) -> Estimate:
    """``reconstruction_error`` from the rows' errors (``reconstruction_errors``)."""
    size = int(errors.size)
    value = float(np.mean(errors)) if size else None
    sampling_error = float(np.std(errors, ddof=1)) / math.sqrt(size) if size > 1 else None
    return Estimate.judge(
        "reconstruction_error",
        value,
        sampling_error,
        profile.band,
        direction="higher",
        size=size,
        limits=(0.0, None),
    )


def domain_classifier(
    reference: FloatArray,
    current: FloatArray,
    *,
    threshold: float = DOMAIN_THRESHOLD,
    bootstrap: bool | None = None,
    quantile: float = 0.95,
) -> StatResult:
    """ROC AUC of a classifier telling reference rows from the window's; higher means drift.

    Rows with a missing value are left out (Evidently's classifier would refuse them).

    >>> rng = np.random.default_rng(1)
    >>> same = domain_classifier(rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)))
    >>> moved = domain_classifier(rng.normal(size=(2000, 2)), rng.normal(1.0, size=(2000, 2)))
    >>> same.drifted, moved.drifted, moved.direction
    (False, True, 'higher')
    """
    sklearn = _sklearn()
    ref = _complete_rows(reference)
    cur = _complete_rows(current)
    use_bootstrap = ref.shape[0] < BOOTSTRAP_BELOW_ROWS if bootstrap is None else bootstrap
    if ref.shape[0] < 2 or cur.shape[0] < 2:
        return insufficient(
            "domain_classifier",
            threshold=threshold,
            direction="higher",
            reference_size=int(ref.shape[0]),
            current_size=int(cur.shape[0]),
            reason="needs at least 2 complete rows in the reference and in the window",
        )
    rows = np.concatenate([ref, cur])
    target = np.concatenate(
        [np.ones(ref.shape[0], dtype=np.int64), np.zeros(cur.shape[0], dtype=np.int64)]
    )
    x_train, x_test, y_train, y_test = sklearn.model_selection.train_test_split(
        rows, target, test_size=0.5, random_state=42, shuffle=True
    )
    classifier = sklearn.linear_model.SGDClassifier(loss="log_loss", random_state=42)
    classifier.fit(x_train, y_train)
    auc = float(sklearn.metrics.roc_auc_score(y_test, classifier.predict_proba(x_test)[:, 1]))
    limit = threshold
    if use_bootstrap:
        # Evidently reseeds numpy's global generator with 0..99; a RandomState with the same
        # seed draws the same numbers without touching global state.
        chance = [
            sklearn.metrics.roc_auc_score(y_test, np.random.RandomState(seed).rand(y_test.size))
            for seed in range(100)
        ]
        limit = float(np.percentile(chance, 100 * quantile))
    return StatResult(
        test="domain_classifier",
        status="ok",
        score=auc,
        statistic=None,
        threshold=limit,
        direction="higher",
        drifted=beyond(auc, limit, "higher", inclusive=False),
        reference_size=int(ref.shape[0]),
        current_size=int(cur.shape[0]),
        details={"bootstrap": use_bootstrap, "test_rows": int(y_test.size)},
    )


def _complete_rows(features: FloatArray) -> FloatArray:
    matrix = np.asarray(features, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, np.newaxis]
    return matrix[np.isfinite(matrix).all(axis=1)]


def _sklearn() -> Any:
    for module in ("sklearn.linear_model", "sklearn.metrics", "sklearn.model_selection"):
        require(module, feature="the domain classifier", extra="estimation")
    return require("sklearn", feature="the domain classifier", extra="estimation")
