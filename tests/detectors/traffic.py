"""Synthetic traffic written straight into a store, with knobs for what the tests plant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from modeltap.config import MonitorConfig
from modeltap.schema import EventBatch, LabelRecord, PredictionRecord, RequestRecord
from modeltap.store import Store

MODEL = "churn"
PLANS = ("basic", "pro", "enterprise")


def config(**detectors: object) -> MonitorConfig:
    """A one-model configuration like the example's (1-hour windows)."""
    return MonitorConfig.model_validate(
        {
            "models": [
                {
                    "name": MODEL,
                    "task": "classification",
                    "positive_class": 1,
                    "segment_by": "plan",
                    "features": [
                        {"name": "age", "type": "numerical"},
                        {"name": "tenure", "type": "numerical"},
                        {"name": "plan", "type": "categorical"},
                    ],
                }
            ],
            "detectors": {"window": "1h", "label_horizon": "1d", **detectors},
        }
    )


@dataclass(frozen=True)
class Traffic:
    """What to generate between ``start`` and ``end``."""

    start: datetime
    end: datetime
    per_hour: int = 400
    version: str = "v1"
    age_mean: float = 40.0
    error_rate: float = 0.01
    latency_ms: float = 25.0
    accuracy: float = 0.9
    label_share: float = 0.0
    label_at: datetime | None = None
    seed: int = 0
    # A calibrated model instead: score = sigmoid((age - 40) / 5), the truth drawn with that
    # chance, the prediction the score rounded. Accuracy then follows the age distribution:
    # a window of ages near 40 (small age_sd) is one the model is unsure about and gets wrong.
    calibrated: bool = False
    age_sd: float = 10.0


def generate(spec: Traffic) -> EventBatch:
    """Requests (one row each), predictions and, for ``label_share`` of rows, labels."""
    rng = np.random.default_rng(spec.seed)
    seconds = (spec.end - spec.start).total_seconds()
    count = int(spec.per_hour * seconds / 3600)
    offsets = np.sort(rng.uniform(0, seconds, count))
    requests: list[RequestRecord] = []
    predictions: list[PredictionRecord] = []
    labels: list[LabelRecord] = []
    for offset in offsets:
        ts = spec.start + timedelta(seconds=float(offset))
        request_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        event_id = uuid.UUID(bytes=rng.bytes(16), version=4).hex
        failed = bool(rng.random() < spec.error_rate)
        requests.append(
            RequestRecord(
                event_id=event_id,
                request_id=request_id,
                model=MODEL,
                version=spec.version,
                ts=ts,
                latency_ms=float(rng.lognormal(np.log(spec.latency_ms), 0.3)),
                status_code=500 if failed else 200,
            )
        )
        if failed:
            continue
        if spec.calibrated:
            age = round(float(rng.normal(spec.age_mean, spec.age_sd)), 2)
            score = float(1 / (1 + np.exp(-(age - 40.0) / 5.0)))
            truth = int(rng.random() < score)
            predicted = int(score >= 0.5)
        else:
            truth = int(rng.integers(0, 2))
            predicted = truth if rng.random() < spec.accuracy else 1 - truth
            age, score = round(float(rng.normal(spec.age_mean, 10)), 2), 0.8 if predicted else 0.2
        predictions.append(
            PredictionRecord(
                event_id=event_id,
                row_index=0,
                request_id=request_id,
                model=MODEL,
                version=spec.version,
                ts=ts,
                features={
                    "age": age,
                    "tenure": int(rng.integers(1, 72)),
                    "plan": str(rng.choice(PLANS)),
                },
                prediction=predicted,
                score=score,
            )
        )
        if rng.random() < spec.label_share:
            arrived = spec.label_at or ts + timedelta(hours=1)
            labels.append(
                LabelRecord(
                    value=truth,
                    ts=arrived,
                    received_at=arrived,
                    request_id=request_id,
                    row_index=0,
                    model=MODEL,
                )
            )
    return EventBatch(requests, predictions, labels)


def write(store: Store, specs: Sequence[Traffic]) -> EventBatch:
    """Generate and store every spec; returns everything written (for later labels)."""
    batches = [generate(spec) for spec in specs]
    for batch in batches:
        store.write(batch)
    return EventBatch(
        [r for b in batches for r in b.requests],
        [p for b in batches for p in b.predictions],
        [label for b in batches for label in b.labels],
    )
