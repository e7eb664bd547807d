"""Multiclass performance estimation in the live path: class probabilities captured per row,
stored, read back, fitted into the reference and estimated per window before the labels.

The model is calibrated (its probabilities are the classes' true chances), so CBPE's
estimate is honest. From 05:00 the callers crowd around the point where every class is
about as likely as the others, and the model's accuracy falls; the estimate must say so
before any label arrives, and agree with the realized figure once they do.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from detectors import backfill, fitting
from detectors.emit import Scope
from detectors.evaluate import evaluate
from detectors.history import Columns, FileSource
from detectors.profile import Profile
from detectors.runner import Planned, Runner
from detectors.settings import ModelSettings
from detectors.stats import cbpe_multiclass
from detectors.windows import Window
from modeltap.config import MonitorConfig
from modeltap.schema import DetectorResult, EventBatch, LabelRecord, PredictionRecord, RequestRecord
from modeltap.store import SqlStore

T0 = datetime(2026, 11, 25, tzinfo=UTC)
MODEL = "species"
CLASSES = ("setosa", "versicolor", "virginica")
WEIGHTS = np.array([[1.5, -0.75, -0.75], [0.0, 1.3, -1.3]])
NORMAL = Window(T0 + timedelta(hours=4), T0 + timedelta(hours=5))
SHIFTED = Window(T0 + timedelta(hours=5), T0 + timedelta(hours=6))


def configured(**model: object) -> MonitorConfig:
    return MonitorConfig.model_validate(
        {
            "models": [
                {
                    "name": MODEL,
                    "task": "classification",
                    "classes": list(CLASSES),
                    "payload": {"score_path": "probabilities"},
                    "features": [
                        {"name": "x0", "type": "numerical"},
                        {"name": "x1", "type": "numerical"},
                    ],
                    **model,
                }
            ],
            "detectors": {"window": "1h", "label_horizon": "1d"},
        }
    )


SETTINGS = ModelSettings.from_config(configured(), MODEL)


@dataclass(frozen=True)
class Hour:
    """One hour of calls; ``spread`` small puts the callers where the classes tie."""

    start: datetime
    seed: int
    spread: float = 1.5
    per_hour: int = 1200
    labelled: bool = False
    label_at: datetime | None = None


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def generate(hour: Hour) -> tuple[EventBatch, pd.DataFrame]:
    """The hour's events as the sidecar stores them, and the same rows as a table.

    Rows alternate between the two shapes models answer in (a list in class order, an
    object keyed by class); every 50th row has no probabilities at all.
    """
    rng = np.random.default_rng(hour.seed)
    x = rng.normal(scale=hour.spread, size=(hour.per_hour, 2))
    chances = softmax(x @ WEIGHTS)
    truth = (rng.random((hour.per_hour, 1)) > chances.cumsum(axis=1)).sum(axis=1)
    predicted = chances.argmax(axis=1)
    offsets = np.sort(rng.uniform(0, 3600, hour.per_hour))
    requests, predictions, labels = [], [], []
    for index in range(hour.per_hour):
        ts = hour.start + timedelta(seconds=float(offsets[index]))
        event_id = uuid.UUID(bytes=rng.bytes(16), version=4).hex
        probabilities = [float(p) for p in chances[index]]
        answered: list[float] | dict[str, float] | None = (
            None
            if index % 50 == 49
            else probabilities
            if index % 2
            else dict(reversed(list(zip(CLASSES, probabilities, strict=True))))
        )
        requests.append(
            RequestRecord(event_id, event_id, MODEL, "v1", ts, latency_ms=5.0, status_code=200)
        )
        predictions.append(
            PredictionRecord(
                event_id=event_id,
                row_index=0,
                request_id=event_id,
                model=MODEL,
                version="v1",
                ts=ts,
                features={"x0": float(x[index, 0]), "x1": float(x[index, 1])},
                prediction=CLASSES[predicted[index]],
                class_scores=answered,
            )
        )
        if hour.labelled:
            arrived = hour.label_at or ts + timedelta(minutes=30)
            labels.append(
                LabelRecord(
                    value=CLASSES[truth[index]],
                    ts=arrived,
                    received_at=arrived,
                    request_id=event_id,
                    row_index=0,
                    model=MODEL,
                )
            )
    scored = np.array([index % 50 != 49 for index in range(hour.per_hour)])
    table = pd.DataFrame(
        {
            "ts": [p.ts for p in predictions],
            "request_id": [p.request_id for p in predictions],
            "version": "v1",
            "x0": x[:, 0],
            "x1": x[:, 1],
            "prediction": [CLASSES[i] for i in predicted],
            "label": [CLASSES[i] for i in truth],
        }
        | {
            f"score_{name}": np.where(scored, chances[:, k], np.nan)
            for k, name in enumerate(CLASSES)
        }
    )
    return EventBatch(requests, predictions, labels), table


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def prepare(store: SqlStore) -> dict[str, pd.DataFrame]:
    """A labelled reference 00-04h, fitted from the store; live hours 04-06 without labels."""
    tables = {}
    for hour in range(4):
        batch, tables[f"reference{hour}"] = generate(Hour(at(hour), seed=hour, labelled=True))
        store.write(batch)
    rows = fitting.rows_from_store(store, SETTINGS, at(0), at(4), None)
    profile = fitting.fit_rows(SETTINGS, rows)
    fitting.save(store, SETTINGS, profile, version="", source="t", now=at(4))
    for window, spec in ((NORMAL, Hour(at(4), seed=10)), (SHIFTED, Hour(at(5), 11, spread=0.4))):
        batch, tables[str(window.start)] = generate(spec)
        store.write(batch)
    return tables


def found(results: list[DetectorResult], detector: str, window: Window) -> DetectorResult:
    return next(r for r in results if r.detector == detector and r.window_start == window.start)


def test_the_estimate_is_cbpe_on_the_stored_probabilities_and_drops_before_labels(
    store: SqlStore,
) -> None:
    tables = prepare(store)
    profile = store.get_reference(MODEL, "")
    assert profile is not None
    outcome = Runner(store, [SETTINGS], owner="t").run(MODEL, "estimation", at(6))
    assert outcome.status == "ok", outcome.error
    normal = found(outcome.results, "estimated_accuracy", NORMAL)
    shifted = found(outcome.results, "estimated_accuracy", SHIFTED)
    assert normal.score is not None
    assert shifted.score is not None
    # Exactly the statistic on the rows the sidecar stored, lists and objects alike.
    fitted = Profile.from_json(profile.profile).estimators
    assert fitted is not None
    assert fitted.multiclass is not None
    assert fitted.multiclass.classes == CLASSES
    table = tables[str(SHIFTED.start)]
    usable = table["score_setosa"].notna().to_numpy()
    scores = table[[f"score_{name}" for name in CLASSES]].to_numpy()[usable]
    predicted = np.array([CLASSES.index(p) for p in table["prediction"][usable]])
    expected = cbpe_multiclass.estimate(fitted.multiclass, scores, predicted)
    for name in cbpe_multiclass.METRICS:
        row = found(outcome.results, f"estimated_{name}", SHIFTED)
        assert row.score == pytest.approx(expected[name].value, rel=1e-12)
        assert row.current_size == int(usable.sum())
    assert normal.score - shifted.score > 0.15
    assert (shifted.alert, normal.alert, shifted.direction) == (True, False, "lower")
    assert shifted.threshold == fitted.multiclass.bands["accuracy"].lower
    # No labels yet for the live hours.
    realized = {r.window_start for r in outcome.results if r.detector.startswith("realized_")}
    assert realized == {at(hour) for hour in range(4)}


def test_late_labels_confirm_the_estimate(store: SqlStore) -> None:
    prepare(store)
    runner = Runner(store, [SETTINGS], owner="t")
    runner.run(MODEL, "estimation", at(6))
    late, _ = generate(Hour(at(5), 11, spread=0.4, labelled=True, label_at=at(8)))
    store.write(EventBatch(labels=late.labels))
    again = runner.run(MODEL, "estimation", at(8) + timedelta(minutes=1))
    assert again.status == "ok", again.error
    estimated = found(again.results, "estimated_accuracy", SHIFTED)
    realized = found(again.results, "realized_accuracy", SHIFTED)
    assert estimated.score is not None
    assert realized.score is not None
    # Calibrated probabilities: the realized accuracy is a binomial draw around the
    # estimate, so it lies within three of that draw's standard deviations. (The reported
    # sampling_error is NannyML's, from the reference's variance at an accuracy near 0.8,
    # smaller than this window's own at 0.53.)
    assert realized.current_size is not None
    spread = (estimated.score * (1 - estimated.score) / realized.current_size) ** 0.5
    assert abs(realized.score - estimated.score) < 3 * spread
    assert estimated.details["sampling_error"] < spread
    assert realized.alert
    assert realized.threshold == estimated.threshold


def test_a_reference_file_and_a_window_file_give_the_same_estimate_as_the_store(
    store: SqlStore,
) -> None:
    """``score_<class>`` columns are a file's class probabilities (reference set, backfill)."""
    tables = prepare(store)
    reference = pd.concat([tables[f"reference{hour}"] for hour in range(4)], ignore_index=True)
    profile = fitting.fit_rows(SETTINGS, fitting.rows_from_table(SETTINGS, reference))
    assert profile.estimators is not None
    assert profile.estimators.multiclass is not None
    window = fitting.rows_from_table(SETTINGS, tables[str(SHIFTED.start)])
    scope = Scope(MODEL, "", SHIFTED, at(6))
    from_file = evaluate(
        SETTINGS, scope, detectors=["estimation"], rows={"": window}, profiles={"": profile}
    )
    stored = Profile.from_json(store.get_reference(MODEL, "").profile)  # type: ignore[union-attr]
    from_store = evaluate(
        SETTINGS, scope, detectors=["estimation"], rows={"": window}, profiles={"": stored}
    )
    by_name = {r.detector: r.score for r in from_store}
    assert by_name["estimated_accuracy"] is not None
    for result in from_file:
        # The store may hand the reference's rows over in another order, and the isotonic
        # fit is the same either way; only the bands' chunks could differ.
        assert result.score == pytest.approx(by_name[result.detector], abs=1e-9)


def test_rows_without_class_probabilities_say_what_is_missing(store: SqlStore) -> None:
    prepare(store)
    blind = ModelSettings.from_config(configured(), MODEL)
    window = fitting.rows_from_store(store, blind, NORMAL.start, NORMAL.end, None)
    no_scores = fitting.rows_from_table(blind, pd.DataFrame({"x0": [0.0] * 200, "x1": 0.0,
                                        "prediction": "setosa"}))  # fmt: skip
    profile = Profile.from_json(store.get_reference(MODEL, "").profile)  # type: ignore[union-attr]
    scope = Scope(MODEL, "", NORMAL, at(6))
    results = evaluate(
        blind, scope, detectors=["estimation"], rows={"": no_scores}, profiles={"": profile}
    )
    assert {r.status for r in results} == {"insufficient_data"}
    assert "0 rows with a prediction and a score" in results[0].details["reason"]
    assert len(window) == 1200
    # A reference without probabilities cannot be fitted, and the window says why.
    unfit = fitting.fit_rows(blind, no_scores)
    assert unfit.estimators is not None
    assert unfit.estimators.multiclass is None
    assert "class probabilities" in unfit.estimators.notes["estimation"]
    # Nor the PCA of features that never vary (it has no component to keep).
    assert "no numerical feature varies" in unfit.estimators.notes["reconstruction_error"]


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_file_backfill_estimates_what_the_live_path_did(
    store: SqlStore, tmp_path: Path, kind: str
) -> None:
    """Class probabilities as ``score_<class>`` columns of past predictions, read in place
    (Parquet) or through the scratch dataset (CSV), give the live rows."""
    tables = prepare(store)
    live = Runner(store, [SETTINGS], owner="t").compute(
        SETTINGS, "estimation", Planned(SHIFTED), at(6)
    )
    frame = pd.concat([tables[str(NORMAL.start)], tables[str(SHIFTED.start)]])
    path = tmp_path / f"history.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    source = FileSource(path, SETTINGS, Columns())
    try:
        source.prepare(SHIFTED.size)
        data = source.read(SHIFTED)
    finally:
        source.close()
    profiles = backfill.stored_profiles(store, MODEL, list(data.rows))
    computed = backfill.compute(SETTINGS, SHIFTED, data, profiles, now=at(6))["estimation"]
    assert [(r.detector, r.current_size, r.alert) for r in computed] == [
        (r.detector, r.current_size, r.alert) for r in live
    ]
    for mine, theirs in zip(computed, live, strict=True):
        # A CSV's text spells each float exactly (shortest round trip): the same values.
        assert mine.score == pytest.approx(theirs.score, rel=1e-12)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"positive_class": "setosa"}, "set one of them"),
        ({"task": "regression"}, "classes belong to a classification model"),
        ({"classes": ["a", "b", "a"]}, "classes must be unique"),
        ({"classes": ["a", "b"]}, "at least 3 items"),
    ],
)
def test_classes_that_cannot_work_are_refused(model: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        configured(**model)
