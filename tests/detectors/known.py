"""Reference answers: Evidently 0.7's own stat tests, called through its public API."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests import (
    chi_stat_test,
    jensenshannon_stat_test,
    ks_stat_test,
    psi_stat_test,
    wasserstein_stat_test,
    z_stat_test,
)
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType

EVIDENTLY_TESTS = {
    "ks": ks_stat_test,
    "psi": psi_stat_test,
    "chisquare": chi_stat_test,
    "z": z_stat_test,
    "jensenshannon": jensenshannon_stat_test,
    "wasserstein": wasserstein_stat_test,
}
# Evidently's display names (as reports print them) -> registered names.
DISPLAY_NAMES = {test.display_name: name for name, test in EVIDENTLY_TESTS.items()}


def column_type(kind: str) -> ColumnType:
    return ColumnType.Numerical if kind == "numerical" else ColumnType.Categorical


def evidently_score(name: str, reference: Any, current: Any, kind: str) -> tuple[float, bool]:
    """Evidently's score and drift verdict for one column, at its default threshold."""
    result = EVIDENTLY_TESTS[name](
        pd.Series(reference), pd.Series(current), column_type(kind), None
    )
    return float(result.drift_score), bool(result.drifted)


def evidently_auto(reference: Any, current: Any, kind: str) -> str:
    """The test Evidently picks when none is configured."""
    chosen = get_stattest(pd.Series(reference), pd.Series(current), column_type(kind), None)
    return str(chosen.name)


def random_categories(rng: np.random.Generator, keys: str, shares: list[float], size: int) -> Any:
    return rng.choice(list(keys), p=shares, size=size)
