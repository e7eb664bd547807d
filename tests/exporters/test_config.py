"""The exporter's configuration keys: defaults, and errors that name the key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from modeltap.configload import load_config
from modeltap.errors import ConfigError


def test_defaults_and_the_derived_lookback() -> None:
    config = load_config(None, {})
    assert config.exporter.listen == "0.0.0.0:9110"
    assert config.exporter.datasource_uid == "modeltap-prometheus"
    # Two one-hour windows plus a five-minute interval.
    assert config.export_lookback == timedelta(hours=2, minutes=5)
    overridden = load_config(None, {"MONITOR_EXPORTER__LOOKBACK": "30m"})
    assert overridden.export_lookback == timedelta(minutes=30)


def test_bad_exporter_settings_name_their_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "exporter:\n"
        "  listen: nowhere\n"
        "  datasource_uid: 'has spaces'\n"
        "  alert_for: {'not an alert': 5m, ModeltapFeatureDrift: soon}\n"
        "  max_features_per_model: 0\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    message = str(caught.value)
    assert "exporter.listen: expected host:port" in message
    assert "exporter.datasource_uid: String should match pattern" in message
    assert "exporter.alert_for.ModeltapFeatureDrift: expected a duration" in message
    assert "exporter.max_features_per_model: Input should be greater than or equal to 1" in message


def test_an_alert_name_must_look_like_one(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("exporter: {alert_for: {'not an alert': 5m}}\n")
    with pytest.raises(
        ConfigError, match=r"exporter\.alert_for: 'not an alert' is not an alert name"
    ):
        load_config(path, {})
