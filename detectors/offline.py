"""The detectors over tables rather than the store: the model a table implies, and late labels
joined to its rows (``monitor check`` now, ``monitor backfill`` too)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from detectors.rows import TextArray, coerce_categorical
from modeltap.config import ModelConfig, MonitorConfig
from modeltap.errors import InputError

OUTCOME_COLUMNS = ("prediction", "score", "label")


def model_for_table(
    config: MonitorConfig, name: str | None, reference: pd.DataFrame, task: str | None
) -> ModelConfig:
    """The model a table is checked as: ``name`` from the configuration, its only model, or,
    with none configured, one whose features are the table's columns, typed by their data.
    """
    if name is not None:
        found = config.model(name)
        if found is None:
            known = ", ".join(m.name for m in config.models) or "none"
            raise InputError(f"model {name!r} is not in the configuration (configured: {known})")
        return found
    if len(config.models) == 1:
        return config.models[0]
    if config.models:
        raise InputError(
            f"the configuration has {len(config.models)} models; choose one with --model"
        )
    # No configuration: every column but the outcomes is a feature, typed by its data.
    features = [
        {"name": str(column), "type": "numerical" if _numeric(reference[column]) else "categorical"}
        for column in reference.columns
        if column not in OUTCOME_COLUMNS
    ]
    if not features:
        raise InputError("the reference file has no feature columns")
    return ModelConfig.model_validate(
        {"name": "check", "task": task or "classification", "features": features}
    )


def _numeric(column: pd.Series[Any]) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))


def join_labels(
    labels: pd.DataFrame, current: pd.DataFrame, id_column: str | None, label_column: str
) -> TextArray:
    """The truth for each row of ``current``: joined on ``id_column``, or by row order."""
    if label_column not in labels:
        raise InputError(
            f"the labels file has no {label_column!r} column (its columns: "
            f"{', '.join(map(str, labels.columns))}); name it with --label-column"
        )
    if id_column is not None and id_column in labels and id_column in current:
        joined = current[[id_column]].merge(
            labels[[id_column, label_column]].drop_duplicates(id_column, keep="last"),
            on=id_column,
            how="left",
        )
        values = joined[label_column]
    elif len(labels) == len(current):
        values = labels[label_column].reset_index(drop=True)
    else:
        raise InputError(
            f"the labels file has {len(labels)} rows and the current file {len(current)}; "
            "give an --id-column present in both to join them"
        )
    return coerce_categorical(values)[0]
