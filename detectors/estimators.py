"""What the estimation and multivariate families need from the reference, fitted once.

``monitor reference set`` fits these beside the per-feature references and they are stored
in the same JSON profile, so a window is scored without refitting anything: CBPE's
calibration, sampling-error components and bands (a binary classifier whose reference rows
have labels and scores, or one-vs-rest per class for a multiclass one whose rows have class
probabilities); DLE's two loss models as plain trees (a regressor with labelled
reference rows; scikit-learn is needed to fit them, not to use them); the PCA of the
numerical features; and a sample of reference rows for the domain classifier. A state that
could not be fitted leaves its reason in ``notes``, which the families report per window
instead of failing.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from detectors.rows import Rows, TextArray, class_matrix, coerce_numerical
from detectors.stats import cbpe, cbpe_multiclass, dle
from detectors.stats.bands import Band
from detectors.stats.boosting import Forest, portable
from detectors.stats.multivariate import ReconstructionProfile, fit_reconstruction
from detectors.stats.samples import FloatArray, IntArray
from modeltap.errors import MissingExtraError
from modeltap.schema import JsonValue

if TYPE_CHECKING:
    from detectors.settings import ModelSettings

# The keys of ``notes``: the estimation family, and each multivariate method by its name.
ESTIMATION, RECONSTRUCTION, DOMAIN = "estimation", "reconstruction_error", "domain_classifier"


@dataclass(frozen=True)
class Estimators:
    """The fitted states (each None when it could not be fitted) and why any is missing.

    ``features`` are the numerical features in the column order of the PCA, the domain
    sample and the DLE loss models.
    """

    features: tuple[str, ...] = ()
    cbpe: cbpe.CbpeProfile | None = None
    multiclass: cbpe_multiclass.MulticlassCbpeProfile | None = None
    dle: dle.DleProfile | None = None
    reconstruction: ReconstructionProfile | None = None
    sample: FloatArray | None = None
    notes: Mapping[str, str] = field(default_factory=dict)

    def matrix(self, rows: Rows, start: int = 0, stop: int | None = None) -> FloatArray:
        """The window's numerical features (rows ``start:stop``) as one matrix, in the
        fitted column order."""
        if not self.features:
            return np.zeros((len(rows), 0))[start:stop]
        return np.column_stack([rows.numbers(name)[start:stop] for name in self.features])

    def to_json(self) -> dict[str, JsonValue]:
        sample = None
        if self.sample is not None:
            sample = {
                "shape": list(self.sample.shape),
                "values": base64.b64encode(self.sample.astype("<f8").tobytes()).decode("ascii"),
            }
        return {
            "features": list(self.features),
            "cbpe": self.cbpe.to_json() if self.cbpe else None,
            "multiclass": self.multiclass.to_json() if self.multiclass else None,
            "dle": _dle_to_json(self.dle) if self.dle else None,
            "reconstruction": self.reconstruction.to_json() if self.reconstruction else None,
            "sample": sample,
            "notes": dict(self.notes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Estimators:
        sample = None
        if data.get("sample") is not None:
            stored = data["sample"]
            flat = np.frombuffer(base64.b64decode(stored["values"]), dtype="<f8")
            sample = flat.astype(np.float64).reshape(tuple(stored["shape"]))
        return cls(
            features=tuple(data["features"]),
            cbpe=cbpe.CbpeProfile.from_json(data["cbpe"]) if data.get("cbpe") else None,
            multiclass=(
                cbpe_multiclass.MulticlassCbpeProfile.from_json(data["multiclass"])
                if data.get("multiclass")
                else None
            ),
            dle=_dle_from_json(data["dle"]) if data.get("dle") else None,
            reconstruction=(
                ReconstructionProfile.from_json(data["reconstruction"])
                if data.get("reconstruction")
                else None
            ),
            sample=sample,
            notes=dict(data.get("notes", {})),
        )


def fit_estimators(rows: Rows, settings: ModelSettings) -> Estimators:
    """Every state the model's configuration asks for that ``rows`` can support."""
    features = tuple(name for name, kind in settings.kinds.items() if kind == "numerical")
    notes: dict[str, str] = {}
    fitted = Estimators(features=features)
    matrix = fitted.matrix(rows)
    chunk = max(1, len(rows) // settings.estimation.chunks)
    found: dict[str, Any] = {}
    if settings.estimation.enabled:
        try:
            if settings.task == "classification" and settings.classes:
                found["multiclass"] = _fit_multiclass(rows, settings, chunk)
            elif settings.task == "classification":
                found["cbpe"] = _fit_cbpe(rows, settings, chunk)
            else:
                found["dle"] = _fit_dle(rows, matrix, settings, chunk)
        except _UnfitError as reason:
            notes[ESTIMATION] = str(reason)
    multivariate = settings.multivariate
    if multivariate.reconstruction or multivariate.domain_classifier:
        if len(features) < 2:
            few = (
                f"multivariate drift needs at least 2 numerical features; the model has "
                f"{len(features)}"
            )
            notes |= {RECONSTRUCTION: few, DOMAIN: few}
        else:
            if multivariate.reconstruction:
                try:
                    state = fit_reconstruction(
                        matrix, variance=multivariate.variance, chunk_size=chunk
                    )
                except ValueError as flat:
                    notes[RECONSTRUCTION] = str(flat)
                else:
                    found |= _kept(state, features, multivariate.variance, notes)
            if multivariate.domain_classifier:
                found["sample"] = _sample(matrix, multivariate.sample_size)
    return replace(fitted, notes=notes, **found)


def _kept(
    state: ReconstructionProfile, features: tuple[str, ...], variance: float, notes: dict[str, str]
) -> dict[str, Any]:
    if len(state.components) < len(features):
        return {"reconstruction": state}
    # Every component kept: each row is rebuilt exactly and the error is 0 whatever the
    # window holds, a band of rounding noise.
    notes[RECONSTRUCTION] = (
        f"{variance:g} of the variance takes all {len(features)} principal components, so "
        "the reconstruction error cannot move; lower detectors.multivariate.variance"
    )
    return {}


class _UnfitError(Exception):
    """Why a state cannot be fitted from this reference (reported, never raised further)."""


def _fit_cbpe(rows: Rows, settings: ModelSettings, chunk: int) -> cbpe.CbpeProfile:
    positive = settings.positive_class
    if positive is None:
        raise _UnfitError("CBPE estimates a binary classifier: set the model's positive_class")
    if rows.score is None or rows.label is None or rows.prediction is None:
        raise _UnfitError(
            "the reference has no labels or no scores (payload.score_path); CBPE is fitted "
            "on labelled reference rows with the positive class's score"
        )
    usable = (
        np.isfinite(rows.score)
        & np.array([value is not None for value in rows.label], dtype=bool)
        & np.array([value is not None for value in rows.prediction], dtype=bool)
    )
    least = settings.estimation.min_rows
    labels = rows.label[usable] == positive
    if int(np.count_nonzero(usable)) < least or labels.all() or not labels.any():
        raise _UnfitError(
            f"the reference has {int(np.count_nonzero(usable))} rows with a label, a score "
            f"and a prediction; CBPE needs {least} (detectors.estimation.min_rows), of both "
            "classes"
        )
    return cbpe.fit(
        rows.score[usable],
        np.asarray(labels, dtype=bool),
        np.asarray(rows.prediction[usable] == positive, dtype=bool),
        chunk_size=chunk,
    )


def _fit_multiclass(
    rows: Rows, settings: ModelSettings, chunk: int
) -> cbpe_multiclass.MulticlassCbpeProfile:
    classes = settings.classes
    if rows.class_scores is None or rows.label is None or rows.prediction is None:
        raise _UnfitError(
            "the reference has no labels or no class probabilities (payload.score_path, or "
            f"a score_<class> column per class in a file); multiclass CBPE is fitted on "
            f"labelled reference rows with the probability of each of {', '.join(classes)}"
        )
    scores = class_matrix(rows.class_scores, classes)
    labels, predicted = class_indices(rows.label, classes), class_indices(rows.prediction, classes)
    usable = np.isfinite(scores).all(axis=1) & (labels >= 0) & (predicted >= 0)
    count, least = int(np.count_nonzero(usable)), settings.estimation.min_rows
    absent = [name for index, name in enumerate(classes) if not (labels[usable] == index).any()]
    if count < least or absent:
        raise _UnfitError(
            f"the reference has {count} rows with a known class as label and prediction and "
            f"every class's probability; multiclass CBPE needs {least} "
            "(detectors.estimation.min_rows)"
            + (f" and a label of every class (none of {', '.join(absent)})" if absent else "")
        )
    return cbpe_multiclass.fit(
        scores[usable], labels[usable], predicted[usable], classes, chunk_size=chunk
    )


def class_indices(values: TextArray, classes: Sequence[str]) -> IntArray:
    """Each value's position among ``classes``, -1 for a missing or unknown one."""
    position = {name: index for index, name in enumerate(classes)}
    return np.fromiter(
        (position.get(value, -1) for value in values.tolist()), dtype=np.int64, count=len(values)
    )


def _fit_dle(rows: Rows, matrix: FloatArray, settings: ModelSettings, chunk: int) -> dle.DleProfile:
    if rows.label is None or rows.prediction is None:
        raise _UnfitError("the reference has no labels; DLE is fitted on labelled reference rows")
    labels = coerce_numerical(pd.Series(rows.label, dtype=object))[0]
    predictions = coerce_numerical(pd.Series(rows.prediction, dtype=object))[0]
    usable = int(np.count_nonzero(np.isfinite(labels) & np.isfinite(predictions)))
    if usable < settings.estimation.min_rows:
        raise _UnfitError(
            f"the reference has {usable} rows with a numeric label and prediction; DLE needs "
            f"{settings.estimation.min_rows} (detectors.estimation.min_rows)"
        )
    try:
        fitted = dle.fit(matrix, predictions, labels, chunk_size=chunk)
    except MissingExtraError as missing:
        raise _UnfitError(str(missing)) from missing
    return portable(fitted)


def _sample(matrix: FloatArray, size: int) -> FloatArray:
    complete = matrix[np.isfinite(matrix).all(axis=1)]
    if complete.shape[0] <= size:
        return complete
    # A fixed seed: the same reference always keeps the same rows.
    chosen = np.sort(np.random.default_rng(0).choice(complete.shape[0], size, replace=False))
    return complete[chosen]


def _dle_to_json(profile: dle.DleProfile) -> dict[str, JsonValue]:
    return {
        "absolute": profile.absolute.to_json(),
        "squared": profile.squared.to_json(),
        "absolute_std": profile.absolute_std,
        "squared_std": profile.squared_std,
        "squared_mean": profile.squared_mean,
        "bands": {name: band.to_json() for name, band in profile.bands.items()},
        "columns": profile.columns,
        "reference_size": profile.reference_size,
        "chunk_size": profile.chunk_size,
    }


def _dle_from_json(data: Mapping[str, Any]) -> dle.DleProfile:
    return dle.DleProfile(
        absolute=Forest.from_json(data["absolute"]),
        squared=Forest.from_json(data["squared"]),
        absolute_std=float(data["absolute_std"]),
        squared_std=float(data["squared_std"]),
        squared_mean=float(data["squared_mean"]),
        bands={name: Band.from_json(band) for name, band in data["bands"].items()},
        columns=int(data["columns"]),
        reference_size=int(data["reference_size"]),
        chunk_size=int(data["chunk_size"]),
    )
