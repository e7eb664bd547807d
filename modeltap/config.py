"""The configuration schema: one YAML file, every key overridable from the environment.

The same keys are what the Helm chart renders from its values, so a threshold is written
once. Loading (file + environment + command-line flags) lives in ``modeltap.configload``;
this module only says what a valid configuration is.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from modeltap.schema import DRIFT_TESTS
from modeltap.units import ByteSize, Duration, format_duration

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
# The most class probabilities one captured row keeps (and a multiclass model may name).
MAX_CLASSES = 256
_ADDRESS = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.\-]*):(?P<port>\d{1,5})$")


class _Section(BaseModel):
    # Unknown keys are errors: a typo in a threshold must not silently keep the default.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_address(value: str) -> str:
    match = _ADDRESS.match(value)
    if not match or not 0 < int(match.group("port")) < 65536:
        raise ValueError(f"expected host:port such as 0.0.0.0:8000, got {value!r}")
    return value


def _check_database_url(value: str) -> str:
    if value.startswith("postgresql://"):
        # Accept the libpq spelling; SQLAlchemy needs the driver named.
        return "postgresql+psycopg://" + value.removeprefix("postgresql://")
    if value.startswith(("sqlite:///", "postgresql+psycopg://")):
        return value
    raise ValueError(
        f"expected sqlite:///path.db or postgresql+psycopg://user@host:port/db, got {value!r}"
    )


Address = Annotated[str, AfterValidator(_check_address)]
DatabaseUrl = Annotated[str, AfterValidator(_check_database_url)]


class StorageConfig(_Section):
    url: DatabaseUrl = "sqlite:///modeltap.db"
    retention: Duration = timedelta(days=30)
    pool_size: int = Field(default=5, ge=1, le=100)


class SinkConfig(_Section):
    # None means "write straight into storage.url" (the embedded default).
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _check(cls, value: str | None) -> str | None:
        if value is None or value.startswith("kafka://"):
            return value
        return _check_database_url(value)


class KafkaSecurity(_Section):
    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSecurity:
        if self.protocol.startswith("SASL"):
            if self.sasl_mechanism is None or self.sasl_username is None:
                raise ValueError(f"{self.protocol} needs sasl_mechanism and sasl_username")
            if self.sasl_password is None and self.sasl_password_file is None:
                raise ValueError(f"{self.protocol} needs sasl_password or sasl_password_file")
        return self


class KafkaTopics(_Section):
    events: str = "modeltap.events"
    labels: str = "modeltap.labels"
    dead_letter: str = "modeltap.dead-letter"


class KafkaConfig(_Section):
    bootstrap_servers: list[Address] = Field(
        default_factory=lambda: ["127.0.0.1:9092"], min_length=1
    )
    topics: KafkaTopics = KafkaTopics()
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    consumer_group: str = "modeltap-collector"
    client_id: str = "modeltap"
    compression: Literal["lz4", "gzip", "zstd", "none"] = "lz4"
    linger: Duration = timedelta(milliseconds=5)
    security: KafkaSecurity = KafkaSecurity()

    @field_validator("bootstrap_servers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return [item.strip() for item in value.split(",")] if isinstance(value, str) else value


class FeatureConfig(_Section):
    name: str = Field(min_length=1, max_length=255, pattern=r'^[^"]+$')
    type: Literal["numerical", "categorical"]


class PayloadConfig(_Section):
    """Where things live in request/response bodies (dotted paths, e.g. ``data.features``)."""

    format: Literal["auto", "kserve_v1", "oip_v2", "json"] = "auto"
    features_path: str | None = None
    prediction_path: str | None = None
    score_path: str | None = None
    # The field inside each instance that identifies it; labels then join on it.
    instance_id_field: str | None = None
    # The field of a posted or imported label record that holds the ground truth.
    label_field: str = "label"


class CaptureConfig(_Section):
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    drop_fields: list[str] = Field(default_factory=list)
    hash_fields: list[str] = Field(default_factory=list)
    # Key for HMAC-SHA256 of hash_fields; without one a plain SHA-256 is used.
    hash_key: SecretStr | None = None
    max_body_bytes: ByteSize = Field(default=10 * 2**20, ge=0)


class Thresholds(_Section):
    """Alert thresholds; the detectors and the generated alert rules read the same values."""

    latency_p99_ms: float | None = Field(default=1000.0, gt=0)
    error_rate: float | None = Field(default=0.05, ge=0, le=1)
    accuracy_min: float | None = Field(default=None, ge=0, le=1)
    f1_min: float | None = Field(default=None, ge=0, le=1)
    rmse_max: float | None = Field(default=None, gt=0)
    mae_max: float | None = Field(default=None, gt=0)
    label_coverage_min: float | None = Field(default=None, ge=0, le=1)
    # Data quality, per feature: shares of the window's rows (or usable values).
    missing_ratio_max: float | None = Field(default=None, ge=0, le=1)
    type_violation_max: float | None = Field(default=None, ge=0, le=1)
    out_of_range_max: float | None = Field(default=None, ge=0, le=1)
    unseen_category_max: float | None = Field(default=None, ge=0, le=1)


# The performance thresholds that only one kind of model has.
TASK_THRESHOLDS = {
    "classification": frozenset({"accuracy_min", "f1_min"}),
    "regression": frozenset({"rmse_max", "mae_max"}),
}


class ModelConfig(_Section):
    name: str
    task: Literal["classification", "regression"]
    features: list[FeatureConfig] = Field(default_factory=list)
    positive_class: str | int | None = None
    # A multiclass classifier's classes, in the order of the probabilities its score_path
    # gives per row (a list), or the keys of those probabilities (an object).
    classes: list[str | int] | None = Field(default=None, min_length=3, max_length=MAX_CLASSES)
    segment_by: str | None = None
    payload: PayloadConfig = PayloadConfig()
    capture: CaptureConfig = CaptureConfig()
    # Only the keys given here replace the defaults from detectors.thresholds.
    thresholds: dict[str, float | None] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"model names use letters, digits, '_', '.', '-' (at most 128), got {value!r}"
            )
        return value

    @field_validator("thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, float | None]) -> dict[str, float | None]:
        unknown = sorted(set(value) - set(Thresholds.model_fields))
        if unknown:
            raise ValueError(
                f"unknown threshold {', '.join(unknown)}; "
                f"allowed: {', '.join(Thresholds.model_fields)}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        # Every problem at once: a user fixing one should not discover the next on re-run.
        problems: list[str] = []
        names = [feature.name for feature in self.features]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(f"feature names must be unique, repeated: {', '.join(duplicates)}")
        if self.segment_by is not None:
            kinds = {feature.name: feature.type for feature in self.features}
            if kinds.get(self.segment_by) != "categorical":
                problems.append(
                    f"segment_by must name a categorical feature of this model, "
                    f"got {self.segment_by!r}"
                )
        if self.classes is not None:
            spelled = [str(value) for value in self.classes]
            if self.task != "classification":
                problems.append("classes belong to a classification model")
            elif self.positive_class is not None:
                problems.append(
                    "positive_class is for a binary classifier and classes for a multiclass "
                    "one; set one of them"
                )
            if len(set(spelled)) < len(spelled):
                problems.append(f"classes must be unique, got {', '.join(spelled)}")
        other = "regression" if self.task == "classification" else "classification"
        misplaced = sorted(
            key for key, value in self.thresholds.items()
            if value is not None and key in TASK_THRESHOLDS[other]
        )  # fmt: skip
        if misplaced:
            problems.append(
                f"thresholds {', '.join(misplaced)} apply to {other} models and this one is "
                f"{self.task} (it takes {', '.join(sorted(TASK_THRESHOLDS[self.task]))})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class DriftConfig(_Section):
    # The test that sets each feature's drift flag (every numerical feature also reports KS
    # and PSI, every categorical one chi-square and PSI). PSI by default: a KS p-value on a
    # window of thousands of rows flags differences far too small to matter.
    numerical_method: Literal["ks", "psi", "wasserstein", "jensenshannon", "auto"] = "psi"
    categorical_method: Literal["chisquare", "z", "psi", "jensenshannon", "auto"] = "psi"
    # Per-method thresholds: p-values (ks, chisquare, z) drift below, distances above.
    method_thresholds: dict[str, float] = Field(
        default_factory=lambda: {
            "ks": 0.05,
            "chisquare": 0.05,
            "z": 0.05,
            "psi": 0.2,
            "jensenshannon": 0.1,
            "wasserstein": 0.1,
        }
    )
    psi_bins: int = Field(default=10, ge=2, le=1000)
    # quantile: bins fixed from the reference's quantiles at fit time; evidently: Evidently
    # 0.7's Sturges bins over reference and window together (its numbers, exactly).
    psi_mode: Literal["quantile", "evidently"] = "quantile"
    dataset_drift_share: float = Field(default=0.5, gt=0, le=1)
    min_reference_size: int = Field(default=30, ge=1)
    # PSI under no drift is about chi-square(bins - 1) / n: below ~100 rows it is mostly noise.
    min_current_size: int = Field(default=100, ge=1)

    @field_validator("method_thresholds")
    @classmethod
    def _known_methods(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(DRIFT_TESTS))
        if unknown:
            raise ValueError(
                f"unknown drift method {', '.join(unknown)}; allowed: {', '.join(DRIFT_TESTS)}"
            )
        return value


class ReferenceConfig(_Section):
    """What a fitted reference profile keeps (``monitor reference set``)."""

    # Sorted values kept per numerical feature for KS, Wasserstein and Evidently-mode tests.
    # Above 10,000, as Evidently's whole-reference tests usually are, scipy's KS (and so
    # modeltap's) takes the asymptotic p-value; at 10,000 or fewer it sums the exact
    # distribution, about 80 ms of CPU a window (profiled), half of a month's backfill
    # (bench/backfill_speed.py: 110 s at 10,000, 63 s at 20,000). Twice the values also
    # shrink the reference's own sampling error in D by about 30%.
    sample_size: int = Field(default=20_000, ge=100, le=2_000_000)
    # Categories kept per categorical feature; rarer ones are summed as one "other".
    max_categories: int = Field(default=1000, ge=2)
    # Per segment of segment_by: the most frequent values, each with a smaller sample.
    max_segments: int = Field(default=20, ge=1, le=1000)
    segment_sample_size: int = Field(default=2000, ge=100, le=2_000_000)


# The figures the estimation family can estimate, and which way each gets worse.
ESTIMATED_METRICS = {
    "accuracy": "lower", "precision": "lower", "recall": "lower", "f1": "lower",
    "roc_auc": "lower", "mae": "higher", "rmse": "higher",
}  # fmt: skip


class EstimationConfig(_Section):
    """Performance estimated before the labels arrive: CBPE for a classifier whose rows carry
    a score (payload.score_path; class probabilities for a multiclass one, whose classes the
    model names), DLE for a regressor (scikit-learn at fit time)."""

    enabled: bool = True
    # Fewest rows a window needs for an estimate (its sampling error grows as 1/sqrt(rows)).
    min_rows: int = Field(default=100, ge=1)
    # The reference is cut into this many chunks; the band of their figures (mean ± 3
    # standard deviations, NannyML's default) is each estimate's learned threshold.
    chunks: int = Field(default=10, ge=2, le=1000)
    # A fixed threshold per metric instead of the learned band: accuracy 0.8 alerts below
    # 0.8, mae 5 above 5. Metrics not named here use the band.
    thresholds: dict[str, float] = Field(default_factory=dict)

    @field_validator("thresholds")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(ESTIMATED_METRICS))
        if unknown:
            raise ValueError(
                f"unknown estimated metric {', '.join(unknown)}; "
                f"allowed: {', '.join(ESTIMATED_METRICS)}"
            )
        shares = [
            k for k, v in value.items() if ESTIMATED_METRICS[k] == "lower" and not 0 <= v <= 1
        ]
        errors = [k for k, v in value.items() if ESTIMATED_METRICS[k] == "higher" and v <= 0]
        if shares or errors:
            raise ValueError(
                "thresholds of accuracy, precision, recall, f1 and roc_auc are shares from 0 "
                "to 1, of mae and rmse positive numbers in the label's units; check "
                + ", ".join(sorted(shares + errors))
            )
        return value


class MultivariateConfig(_Section):
    """Drift of the numerical features taken together."""

    # PCA reconstruction error against the reference (NannyML's method): numpy only.
    reconstruction: bool = True
    # Evidently's domain classifier (ROC AUC of reference rows against the window's); it
    # needs scikit-learn (the estimation extra), so it is off unless asked for.
    domain_classifier: bool = False
    # The share of the reference's variance the kept principal components explain.
    variance: float = Field(default=0.65, gt=0, lt=1)
    # A fixed reconstruction error to alert above instead of the reference chunks' band.
    reconstruction_threshold: float | None = Field(default=None, gt=0)
    # ROC AUC above which the domain classifier says drift (Evidently's 0.55); below 1000
    # reference rows Evidently's bootstrapped threshold is used instead, as Evidently does.
    domain_threshold: float = Field(default=0.55, gt=0.5, lt=1)
    # Reference rows the profile keeps for the domain classifier to tell from a window's.
    sample_size: int = Field(default=2000, ge=100, le=100_000)
    # Fewest rows (with every numerical feature present) a window needs.
    min_rows: int = Field(default=100, ge=2)


MAX_FEATURE_WORKERS = 256


class DetectorsConfig(_Section):
    window: Duration = timedelta(hours=1)
    interval: Duration = timedelta(minutes=5)
    label_horizon: Duration = timedelta(days=7)
    drift: DriftConfig = DriftConfig()
    reference: ReferenceConfig = ReferenceConfig()
    estimation: EstimationConfig = EstimationConfig()
    multivariate: MultivariateConfig = MultivariateConfig()
    thresholds: Thresholds = Thresholds()
    # Fewest labelled rows for performance metrics, and rows per version for A/B tests.
    min_rows: int = Field(default=30, ge=1)
    # Significance level of the A/B tests between versions serving in the same window.
    ab_alpha: float = Field(default=0.05, gt=0, lt=1)
    # Detector jobs run at the same time (threads) in `monitor detect`.
    workers: int = Field(default=4, ge=1, le=64)
    # Threads that score one window's features side by side (numpy's sorts release the
    # GIL); null: one per CPU core the process may use (its affinity and cgroup quota).
    feature_workers: int | None = None

    @field_validator("feature_workers")
    @classmethod
    def _feature_workers(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_FEATURE_WORKERS:
            raise ValueError(
                f"feature_workers must be a whole number from 1 to {MAX_FEATURE_WORKERS} "
                f"(1 scores features one after the other), or null for one per CPU core; "
                f"got {value}"
            )
        return value

    # Field validators rather than one model validator: each runs even when another key of
    # the section is wrong, so `config check` reports every problem in one go.
    @field_validator("window", "interval")
    @classmethod
    def _positive(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(f"{info.field_name} must be longer than zero")
        seconds = value.total_seconds()
        if info.field_name == "window" and seconds != int(seconds):
            raise ValueError(f"window must be a whole number of seconds, got {value}")
        return value

    @field_validator("label_horizon")
    @classmethod
    def _horizon(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        if value < timedelta(0):
            raise ValueError("label_horizon must not be negative")
        window = info.data.get("window")
        if window is not None and timedelta(0) < value < window:
            # Labels are awaited for label_horizon after a window; shorter than the window
            # itself, the late labels of its first rows are dropped before it is even over.
            raise ValueError(
                f"label_horizon ({format_duration(value)}) is shorter than the window "
                f"({format_duration(window)}); make it at least the window, or 0 for no "
                "late labels"
            )
        return value


class SidecarConfig(_Section):
    listen: Address = "0.0.0.0:8000"
    metrics_listen: Address = "0.0.0.0:9108"
    upstream: str = "http://127.0.0.1:8080"
    upstream_timeout: Duration = timedelta(seconds=60)
    model: str | None = None
    model_version: str | None = None
    queue_size: int = Field(default=10_000, ge=1)
    queue_max_bytes: ByteSize = Field(default=64 * 2**20, ge=1)
    batch_size: int = Field(default=500, ge=1)
    flush_interval: Duration = timedelta(milliseconds=200)
    sink_timeout: Duration = timedelta(seconds=5)
    spool_dir: Path = Path(".modeltap/spool")
    spool_max_bytes: ByteSize = Field(default=512 * 2**20, ge=0)
    shutdown_grace: Duration = timedelta(seconds=25)
    tail: Path | None = None

    @field_validator("upstream")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")


class ServeConfig(_Section):
    listen: Address = "0.0.0.0:8001"
    labels_token: SecretStr | None = None
    labels_token_file: Path | None = None
    # A logged request whose response has not arrived by then is stored without rows.
    pair_timeout: Duration = timedelta(minutes=5)


class CollectConfig(_Section):
    """`monitor collect`: Kafka to the database."""

    metrics_listen: Address = "0.0.0.0:9109"
    batch_size: int = Field(default=2000, ge=1, le=100_000)
    # How long a batch may wait to fill up before it is written anyway.
    batch_wait: Duration = timedelta(milliseconds=500)
    retry_max: Duration = timedelta(seconds=10)


_PROMETHEUS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ExporterConfig(_Section):
    """The Prometheus exporter, the generated alert rules and the Grafana dashboards."""

    # `monitor detect` serves /metrics here (`monitor serve` on serve.listen).
    listen: Address = "0.0.0.0:9110"
    max_features_per_model: int = Field(default=50, ge=1, le=1000)
    # Results and runs older than this are not read at scrape time, so a scrape costs the
    # same after a day or a year. None: two detector windows plus one interval.
    lookback: Duration | None = None
    # Alert rules: where the README is served; each alert links to its runbook anchor there.
    runbook_url: str = "README.md"
    # Prometheus jobs (a regex) whose targets ModeltapTargetDown watches.
    job_pattern: str = Field(default="modeltap.*", min_length=1)
    # How long a condition must hold before the alert fires, per alert name (ModeltapFeatureDrift:
    # 5m); alerts not named keep their defaults (`monitor rules generate` lists them).
    alert_for: dict[str, Duration] = Field(default_factory=dict)
    # The uid of the Prometheus data source the dashboards and Grafana alert rules query.
    datasource_uid: str = Field(default="modeltap-prometheus", pattern=r"^[A-Za-z0-9_\-]{1,40}$")

    @field_validator("alert_for")
    @classmethod
    def _alert_names(cls, value: dict[str, timedelta]) -> dict[str, timedelta]:
        for name, duration in value.items():
            if not _PROMETHEUS_NAME.match(name):
                raise ValueError(f"{name!r} is not an alert name")
            if duration < timedelta(0):
                raise ValueError(f"{name}: a duration must not be negative")
        return value


class MonitorConfig(_Section):
    """The whole configuration; build it with ``modeltap.configload.load_config``."""

    storage: StorageConfig = StorageConfig()
    sink: SinkConfig = SinkConfig()
    kafka: KafkaConfig = KafkaConfig()
    models: list[ModelConfig] = Field(default_factory=list)
    detectors: DetectorsConfig = DetectorsConfig()
    sidecar: SidecarConfig = SidecarConfig()
    serve: ServeConfig = ServeConfig()
    collect: CollectConfig = CollectConfig()
    exporter: ExporterConfig = ExporterConfig()

    @field_validator("models")
    @classmethod
    def _unique_models(cls, value: list[ModelConfig]) -> list[ModelConfig]:
        names = [model.name for model in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique, repeated: {', '.join(duplicates)}")
        return value

    @property
    def sink_url(self) -> str:
        """Where the sidecar writes: the sink if one is set, else straight into storage."""
        return self.sink.url or self.storage.url

    def model(self, name: str) -> ModelConfig | None:
        """The configured model of that name, or None."""
        return next((model for model in self.models if model.name == name), None)

    def require_model(self, name: str) -> ModelConfig:
        """The configured model of that name; an InputError naming the configured ones if none."""
        found = self.model(name)
        if found is None:
            from modeltap.errors import InputError  # noqa: PLC0415 - the error path only

            known = ", ".join(model.name for model in self.models) or "none"
            raise InputError(f"model {name!r} is not configured (configured: {known})")
        return found

    @property
    def export_lookback(self) -> timedelta:
        """How far back the exporter reads results and runs (exporter.lookback or its default)."""
        if self.exporter.lookback is not None:
            return self.exporter.lookback
        return 2 * self.detectors.window + self.detectors.interval

    def thresholds_for(self, model: str) -> Thresholds:
        """Default thresholds with the model's own overrides applied."""
        found = self.model(model)
        if found is None or not found.thresholds:
            return self.detectors.thresholds
        merged = self.detectors.thresholds.model_dump() | found.thresholds
        return Thresholds.model_validate(merged)
