from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from modeltap.schema import LabelRecord, WriteSummary, label_key, utc


def test_label_keys_prefer_instance_ids() -> None:
    assert label_key("r", None, None) == "r:r:0"
    assert label_key("r", 3, None) == "r:r:3"
    assert label_key("r", 3, "cust-1") == "i:cust-1"
    assert label_key(None, None, "cust-1") == "i:cust-1"


def test_a_label_needs_a_key() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="request id or an instance id"):
        _ = LabelRecord(value=1, ts=now, received_at=now).label_key


def test_utc_normalises_and_refuses_naive_times() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert utc(datetime(2026, 1, 1, 14, tzinfo=plus_two)) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert utc(datetime(2026, 1, 1, 14, tzinfo=plus_two)).tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        utc(datetime(2026, 1, 1))  # noqa: DTZ001


def test_write_summaries_add_up() -> None:
    total = WriteSummary(1, 2, 3, 4, 5, 6) + WriteSummary(10, 20, 30, 40, 50, 60)
    assert total == WriteSummary(11, 22, 33, 44, 55, 66)
