"""The demo's customers, the same for its history and its live traffic: who calls the churn
model, before and after the planted change (older customers, more of them on "pro", fewer
very new or very loyal ones).

The change moves callers to where the model is unsure (churn probabilities near one half),
so its expected accuracy falls from about 0.71 to about 0.60 on the scores alone: what CBPE
estimates as soon as a window closes, hours before the labels can say so.
"""

from __future__ import annotations

import numpy as np

MODEL = "churn"
PLANS = np.array(["basic", "pro", "enterprise"])


def customers(
    rng: np.random.Generator, rows: int, *, drifted: bool
) -> tuple[list[float], list[int], list[str]]:
    """Ages (one decimal), tenures in months and plans of ``rows`` callers."""
    ages = rng.normal(60, 5, rows) if drifted else rng.normal(41, 11, rows)
    tenures = rng.integers(18, 42, rows) if drifted else rng.integers(1, 72, rows)
    plans = [
        str(p) for p in rng.choice(PLANS, rows, p=[0.3, 0.6, 0.1] if drifted else [0.6, 0.3, 0.1])
    ]
    return ages.round(1).tolist(), tenures.tolist(), plans
