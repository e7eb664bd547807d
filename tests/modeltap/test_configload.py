"""Configuration: file + environment + flags, and errors that name the bad key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from modeltap.config import DetectorsConfig
from modeltap.configload import env_overlay, load_config
from modeltap.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modeltap.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MODEL = """
models:
  - name: churn
    task: classification
    features:
      - {name: age, type: numerical}
      - {name: plan, type: categorical}
"""


def test_defaults_need_no_file() -> None:
    config = load_config(None, {})
    assert config.storage.url == "sqlite:///modeltap.db"
    assert config.sink_url == config.storage.url
    assert config.detectors.window == timedelta(hours=1)
    assert config.models == []


def test_the_documented_example_is_valid() -> None:
    config = load_config(ROOT / "config.example.yaml", {})
    churn = config.model("churn")
    assert churn is not None
    assert [f.type for f in churn.features] == ["numerical", "numerical", "categorical"]
    assert config.thresholds_for("churn").accuracy_min == 0.7
    assert config.thresholds_for("churn").error_rate == 0.05


def test_environment_overrides_file_and_flags_override_both(tmp_path: Path) -> None:
    path = write(tmp_path, "storage: {url: 'sqlite:///file.db'}\nsidecar: {queue_size: 5}\n")
    env = {"MONITOR_STORAGE__URL": "sqlite:///env.db", "MONITOR_SIDECAR__QUEUE_SIZE": "7"}
    config = load_config(path, env, {"sidecar": {"queue_size": 9}})
    assert config.storage.url == "sqlite:///env.db"
    assert config.sidecar.queue_size == 9


def test_environment_reaches_into_lists_by_index(tmp_path: Path) -> None:
    path = write(tmp_path, MODEL)
    env = {
        "MONITOR_MODELS__0__CAPTURE__SAMPLE_RATE": "0.25",
        "MONITOR_MODELS__0__FEATURES__1__TYPE": "numerical",
    }
    churn = load_config(path, env).models[0]
    assert churn.capture.sample_rate == 0.25
    assert churn.features[1].type == "numerical"
    assert churn.features[0].name == "age"  # the rest of the file's list is kept


def test_lists_from_the_environment_take_json_or_commas() -> None:
    assert load_config(
        None, {"MONITOR_KAFKA__BOOTSTRAP_SERVERS": '["a:1", "b:2"]'}
    ).kafka.bootstrap_servers == ["a:1", "b:2"]
    assert load_config(
        None, {"MONITOR_KAFKA__BOOTSTRAP_SERVERS": "a:1, b:2"}
    ).kafka.bootstrap_servers == ["a:1", "b:2"]


def test_config_path_may_come_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "storage: {url: 'sqlite:///chosen.db'}\n")
    assert load_config(None, {"MONITOR_CONFIG": str(path)}).storage.url == "sqlite:///chosen.db"


def test_unrelated_monitor_variables_are_left_alone() -> None:
    overlay, _ = env_overlay(
        {
            "MONITOR_TEST_KAFKA": "x:1",
            "MONITOR_CONFIG": "a.yaml",
            "HOME": "/root",
            "MONITOR_SERVE__LISTEN": "0.0.0.0:9",
        }
    )
    assert overlay == {"serve": {"listen": "0.0.0.0:9"}}


def test_scalars_stay_strings_so_secrets_are_not_reinterpreted() -> None:
    config = load_config(None, {"MONITOR_SERVE__LABELS_TOKEN": "no"})
    assert config.serve.labels_token is not None
    assert config.serve.labels_token.get_secret_value() == "no"


def test_postgresql_urls_get_the_driver_named() -> None:
    url = load_config(None, {"MONITOR_STORAGE__URL": "postgresql://u@db:5432/m"}).storage.url
    assert url == "postgresql+psycopg://u@db:5432/m"


def errors_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env or {})
    assert caught.value.exit_code == 2
    return str(caught.value)


def test_an_unknown_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    message = errors_of(tmp_path, MODEL + "    capture: {sample_rat: 0.5}\n")
    assert "models[0].capture.sample_rat: unknown key; allowed here: sample_rate, " in message


def test_a_bad_choice_names_the_path_and_the_choices(tmp_path: Path) -> None:
    message = errors_of(tmp_path, MODEL.replace("numerical}", "numeric}"))
    assert "models[0].features[0].type: Input should be 'numerical' or 'categorical'" in message
    assert "(got 'numeric')" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = errors_of(
        tmp_path, "detectors: {window: 2x}\nsidecar: {listen: nowhere}\nkafka: {partitions: 0}\n"
    )
    assert "detectors.window: expected a duration such as 30s" in message
    assert "sidecar.listen: expected host:port" in message
    assert "kafka.partitions: Input should be greater than or equal to 1" in message


def test_a_bad_environment_value_names_its_variable(tmp_path: Path) -> None:
    message = errors_of(tmp_path, MODEL, {"MONITOR_MODELS__0__TASK": "regresion"})
    assert "models[0].task:" in message
    assert "[from environment variable MONITOR_MODELS__0__TASK]" in message


def test_yaml_syntax_errors_give_line_and_column(tmp_path: Path) -> None:
    message = errors_of(tmp_path, "storage:\n  url: [unclosed\n")
    assert "line 3" in message or "line 2" in message
    assert "column" in message


def test_the_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "top level must be a mapping" in errors_of(tmp_path, "- a\n- b\n")


def test_a_missing_file_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; pass --config FILE"):
        load_config(tmp_path / "absent.yaml", {})


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        (MODEL + MODEL.replace("models:\n", ""), "model names must be unique, repeated: churn"),
        (MODEL + "    segment_by: age\n", "segment_by must name a categorical feature"),
        (MODEL + "    thresholds: {acuracy_min: 0.9}\n", "unknown threshold acuracy_min"),
        (MODEL.replace("name: churn", "name: 'bad name'"), "model names use letters"),
        (MODEL + "      - {name: plan, type: numerical}\n", "feature names must be unique"),
        ("kafka: {security: {protocol: SASL_SSL}}", "SASL_SSL needs sasl_mechanism"),
        ("storage: {url: 'mysql://x'}", "expected sqlite:///path.db or postgresql+psycopg"),
        ("sink: {url: 'redis://x'}", "expected sqlite:///path.db"),
        ("sidecar: {upstream: 'localhost:8080'}", "expected an http:// or https:// URL"),
        ("sidecar: {spool_max_bytes: 12XB}", "expected a size"),
    ],
)
def test_semantic_checks(tmp_path: Path, fragment: str, expected: str) -> None:
    assert expected in errors_of(tmp_path, fragment)


def test_kafka_sinks_are_accepted(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "sink: {url: 'kafka://k:9092/events'}\n"), {})
    assert config.sink_url == "kafka://k:9092/events"


def _keys(schema: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in schema.model_fields.items():
        keys.add(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _keys(annotation, f"{prefix}{name}.")
    return keys


def _yaml_keys(data: dict[str, object], prefix: str = "") -> set[str]:
    keys = set()
    for name, value in data.items():
        keys.add(prefix + name)
        if isinstance(value, dict) and name != "method_thresholds":
            keys |= _yaml_keys(value, f"{prefix}{name}.")
    return keys


def test_the_example_documents_every_detector_key() -> None:
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    assert _yaml_keys(example["detectors"]) == _keys(DetectorsConfig)


def test_detector_settings_are_validated_with_their_key_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "detectors:\n"
        "  ab_alpha: 1.5\n"
        "  drift: {method_thresholds: {kss: 0.1}, psi_mode: sturges, numerical_method: chisquare}\n"
        "  reference: {sample_size: 10}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    message = str(caught.value)
    assert "detectors.ab_alpha: Input should be less than 1" in message
    assert "detectors.drift.method_thresholds: unknown drift method kss" in message
    assert "detectors.drift.psi_mode: Input should be 'quantile' or 'evidently'" in message
    assert "detectors.drift.numerical_method: Input should be" in message
    assert (
        "detectors.reference.sample_size: Input should be greater than or equal to 100" in message
    )


def test_windows_are_whole_seconds(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"detectors\.window: window must be a whole number of seconds"
    ):
        load_config(write(tmp_path, "detectors: {window: 90500ms}\n"), {})


def test_checks_across_keys_are_reported_with_the_rest(tmp_path: Path) -> None:
    text = """
storage: {pool_size: -1}
detectors: {window: 1h, label_horizon: 10m, min_rows: 0}
models:
  - name: house
    task: regression
    thresholds: {accuracy_min: 0.9}
    features: [{name: rooms, type: numerical}, {name: rooms, type: numerical}]
"""
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text), {})
    lines = str(raised.value).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "storage.pool_size",
        "models[0]",
        "detectors.label_horizon",
        "detectors.min_rows",
    ]
    model = next(line for line in lines if "models[0]" in line)
    assert "feature names must be unique, repeated: rooms" in model
    assert (
        "thresholds accuracy_min apply to classification models and this one is regression "
        "(it takes mae_max, rmse_max)"
    ) in model
    assert "label_horizon (10m) is shorter than the window (1h)" in str(raised.value)


def test_a_horizon_of_zero_means_no_late_labels(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, "detectors: {window: 1h, label_horizon: 0s}\n"), {})
    assert loaded.detectors.label_horizon == timedelta(0)


def test_detector_defaults() -> None:
    detectors = load_config(None, {}).detectors
    assert (detectors.drift.numerical_method, detectors.drift.categorical_method) == ("psi", "psi")
    assert detectors.drift.min_current_size == 100
    assert detectors.reference.sample_size == 20_000
    assert detectors.thresholds.missing_ratio_max is None
