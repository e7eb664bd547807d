"""The detectors over tables rather than the store: the model a table implies, and late labels
joined to its rows (``monitor check`` now, ``monitor backfill`` too)."""

from __future__ import annotations

from collections.abc import Sequence
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
        return config.require_model(name)
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
    if task is None and "prediction" in reference and looks_continuous(reference["prediction"]):
        raise InputError(
            "the reference's predictions are continuous numbers; pass --task regression "
            "(or --task classification to treat each value as a class)"
        )
    return ModelConfig.model_validate(
        {"name": "check", "task": task or "classification", "features": features}
    )


def _numeric(column: pd.Series[Any]) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))


def require_features(model: str, features: Sequence[str], frame: pd.DataFrame, what: str) -> None:
    """Refuse a table that lacks any of the model's features: scoring it would judge
    columns that are not there as "too little data" and pass a gate that checked nothing.
    """
    absent = [name for name in features if name not in frame.columns]
    if absent:
        shown = ", ".join(absent[:10]) + (
            f" and {len(absent) - 10} more" if len(absent) > 10 else ""
        )
        raise InputError(
            f"the {what} has no column for {len(absent)} of the {len(features)} features "
            f"of model {model!r} ({shown}); its columns: {_columns(frame)}"
        )


def looks_continuous(values: pd.Series[Any]) -> bool:
    """Labels that are numbers with fractions and many distinct values: a regression's truth.

    >>> looks_continuous(pd.Series([0.5 + i / 7 for i in range(50)]))
    True
    >>> looks_continuous(pd.Series([0.0, 1.0] * 50)), looks_continuous(pd.Series(["a", "b"]))
    (False, False)
    """
    if not _numeric(values):
        return False
    finite = pd.to_numeric(values, errors="coerce").dropna()
    # More distinct values than a classifier plausibly has classes, and not all whole.
    return bool(finite.nunique() > 20 and (finite % 1 != 0).any())


def _columns(frame: pd.DataFrame) -> str:
    names = [str(column) for column in frame.columns]
    return ", ".join(names[:12]) + (" …" if len(names) > 12 else "") if names else "none"


def join_labels(
    labels: pd.DataFrame,
    current: pd.DataFrame,
    id_column: str | None,
    label_column: str,
    *,
    required: bool = False,
) -> TextArray:
    """The truth for each row of ``current``: joined on ``id_column``, or by row order.

    A ``required`` id column (one the user named) must be in both tables: falling back to row
    order then would join the wrong rows without a word.
    """
    if label_column not in labels:
        raise InputError(
            f"the labels file has no {label_column!r} column (its columns: "
            f"{_columns(labels)}); name it with --label-column"
        )
    if required and id_column is not None:
        lacking = [
            name
            for name, frame in (("labels", labels), ("current", current))
            if id_column not in frame.columns
        ]
        if lacking:
            frame = labels if lacking[0] == "labels" else current
            raise InputError(
                f"--id-column {id_column!r} is not a column of the {' or the '.join(lacking)} "
                f"file (the {lacking[0]} file's columns: {_columns(frame)})"
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
