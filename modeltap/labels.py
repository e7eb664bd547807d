"""Late labels as they arrive through any door (HTTP, Kafka, files), validated the same way.

A label says what the right answer was for one prediction: it names the prediction by its
request id (and row index within a batch request, default 0) or by the instance id the
model's config says instances carry, and gives the value. Time is when the truth became
known (default: when modeltap received it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modeltap.config import MonitorConfig
from modeltap.errors import InputError
from modeltap.schema import MAX_ID, MAX_NAME, JsonValue, LabelRecord, bounded, in_range, utc


class LabelError(InputError):
    """A label (or one of a batch) is invalid; the message names the item and field."""


# Row indices are stored as 32-bit integers; no batch request has more rows.
MAX_ROW = 2**31 - 1


class _Label(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Ids of any length are accepted and stored as captured ones are (see ``bounded``),
    # so a label names the same prediction whatever its id looks like.
    request_id: str | None = Field(default=None, min_length=1)
    row_index: int | None = Field(default=None, ge=0, le=MAX_ROW)
    instance_id: str | int | None = None
    label: JsonValue = Field(default=None)
    time: datetime | None = None
    model: str | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _present(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "label" not in data:
            raise ValueError("each label needs a 'label' field with the true value")
        return data

    @model_validator(mode="after")
    def _keyed(self) -> _Label:
        if self.request_id is None and self.instance_id is None:
            raise ValueError("each label needs a request_id (with row_index) or an instance_id")
        if self.time is not None and self.time.tzinfo is None:
            raise ValueError("time needs a timezone, e.g. 2026-11-25T12:00:00Z")
        if self.time is not None and not in_range(self.time):
            raise ValueError("time must lie between 1970 and the year 9999")
        if isinstance(self.label, dict | list):
            raise ValueError("label must be a single value (number, string or boolean)")
        if isinstance(self.label, float) and not math.isfinite(self.label):
            # Stored as JSON, a NaN or an infinity would silently become null.
            raise ValueError("label must be a finite number, not NaN or infinity")
        return self


def parse_labels(
    items: Iterable[Any],
    received_at: datetime,
    *,
    label_field: str = "label",
    where: str = "labels",
    indexed: bool = True,
) -> list[LabelRecord]:
    """Validate every item; raise LabelError naming the first bad ones (all or nothing).

    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> parse_labels([{"request_id": "r1", "label": 1}], now)[0].label_key
    'r:r1:0'
    """
    records: list[LabelRecord] = []
    problems: list[str] = []
    for index, raw in enumerate(items):
        item = raw
        if isinstance(raw, Mapping) and label_field != "label" and label_field in raw:
            item = {("label" if key == label_field else key): value for key, value in raw.items()}
        try:
            parsed = _Label.model_validate(item)
        except ValidationError as exc:
            for error in exc.errors()[:3]:
                path = ".".join(str(part) for part in error["loc"])
                field = f".{path}" if path else ""
                message = error["msg"].removeprefix("Value error, ")
                if error["type"] == "extra_forbidden":
                    message = (
                        "unknown field; allowed: request_id, row_index, instance_id, "
                        f"{label_field}, time, model"
                    )
                at = f"{where}[{index}]" if indexed else where
                problems.append(f"{at}{field}: {message}")
            if len(problems) >= 10:
                break
            continue
        records.append(
            LabelRecord(
                value=parsed.label,
                ts=utc(parsed.time) if parsed.time is not None else received_at,
                received_at=received_at,
                request_id=None
                if parsed.request_id is None
                else bounded(parsed.request_id, MAX_ID),
                row_index=parsed.row_index if parsed.instance_id is None else None,
                instance_id=(
                    None if parsed.instance_id is None else bounded(str(parsed.instance_id), MAX_ID)
                ),
                model=None if parsed.model is None else bounded(parsed.model, MAX_NAME),
            )
        )
    if problems:
        raise LabelError("; ".join(problems))
    return records


def label_field_for(config: MonitorConfig, model: str | None) -> str:
    """The field that holds the true value for ``model`` (its payload.label_field)."""
    found = config.model(model) if model else None
    return found.payload.label_field if found is not None else "label"
