"""The demo's customers, the same for its history and its live traffic: who calls the churn
model, before and after the planted change (older customers, more of them on "pro")."""

from __future__ import annotations

import numpy as np

MODEL = "churn"
PLANS = np.array(["basic", "pro", "enterprise"])


def customers(
    rng: np.random.Generator, rows: int, *, drifted: bool
) -> tuple[list[float], list[int], list[str]]:
    """Ages (one decimal), tenures in months and plans of ``rows`` callers."""
    ages = rng.normal(52 if drifted else 41, 11, rows).round(1).tolist()
    tenures = rng.integers(1, 72, rows).tolist()
    plans = [
        str(p) for p in rng.choice(PLANS, rows, p=[0.3, 0.6, 0.1] if drifted else [0.6, 0.3, 0.1])
    ]
    return ages, tenures, plans
