"""Typed configuration: compose `conf/` with Hydra or read `params.yaml`, then validate."""

from __future__ import annotations

{% if cookiecutter.model_library == "xgboost" %}import re
{% endif %}from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

# Editable install (make setup): the package lives in <root>/src/<package>/.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"
PARAMS_FILE = "params.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and the rule."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass
class SyntheticConfig:
    n_rows: int
    partition_rows: int
    n_informative: int
    seed: int


@dataclass
class DataConfig:
    name: str
    raw_path: str
    processed_dir: str
    target: str
    features: list[str]
    test_size: float
    valid_size: float
    min_rows: int
    synthetic: SyntheticConfig | None = None  # generate the raw data instead of tracking it

    def __post_init__(self) -> None:
        _check(0 < self.test_size < 1, "data.test_size must be between 0 and 1")
        _check(0 < self.valid_size < 1, "data.valid_size must be between 0 and 1")
        _check(self.test_size + self.valid_size < 1, "data.test_size + data.valid_size must be < 1")
        _check(len(self.features) > 0, "data.features must list at least one column")
        _check(self.target not in self.features, "data.target must not be one of data.features")
        if self.synthetic:
            _check(self.synthetic.n_rows >= 1, "data.synthetic.n_rows must be >= 1")
            _check(self.synthetic.partition_rows >= 1, "data.synthetic.partition_rows must be >= 1")
            _check(
                1 <= self.synthetic.n_informative <= len(self.features),
                "data.synthetic.n_informative must be between 1 and the number of features",
            )
{%- if cookiecutter.model_library == "xgboost" %}


@dataclass
class XGBoostConfig:
    kind: str
    n_estimators: int
    max_depth: int
    learning_rate: float
    subsample: float
    colsample_bytree: float
    min_child_weight: float
    reg_lambda: float
    early_stopping_rounds: int
    n_jobs: int
    device: str

    def __post_init__(self) -> None:
        _check(
            re.fullmatch(r"cpu|cuda(:\d+)?", self.device) is not None,
            "model.device must be cpu, cuda or cuda:<ordinal>",
        )
        _check(self.n_estimators >= 1, "model.n_estimators must be >= 1")
        _check(self.max_depth >= 1, "model.max_depth must be >= 1")
        _check(0 < self.learning_rate <= 1, "model.learning_rate must be in (0, 1]")
        _check(0 < self.subsample <= 1, "model.subsample must be in (0, 1]")
        _check(0 < self.colsample_bytree <= 1, "model.colsample_bytree must be in (0, 1]")
        _check(self.early_stopping_rounds >= 0, "model.early_stopping_rounds must be >= 0")
{%- endif %}


@dataclass
class LogisticRegressionConfig:
    kind: str
    C: float
    max_iter: int
    class_weight: str | None

    def __post_init__(self) -> None:
        _check(self.C > 0, "model.C must be > 0")
        _check(self.max_iter >= 1, "model.max_iter must be >= 1")
        _check(
            self.class_weight in (None, "balanced"), "model.class_weight must be null or 'balanced'"
        )


MODEL_SCHEMAS: dict[str, type] = {
{%- if cookiecutter.model_library == "xgboost" %}
    "xgboost": XGBoostConfig,
{%- endif %}
    "logistic_regression": LogisticRegressionConfig,
}
{%- if cookiecutter.model_library == "xgboost" %}
COMPUTE_KINDS = ("local", "dask")
{%- else %}
COMPUTE_KINDS = ("local",)
{%- endif %}


@dataclass
class RetentionConfig:
    failed_run_days: float
    purge_after_days: float

    def __post_init__(self) -> None:
        _check(self.failed_run_days >= 0, "tracking.retention.failed_run_days must be >= 0")
        _check(self.purge_after_days >= 0, "tracking.retention.purge_after_days must be >= 0")


@dataclass
class TrackingConfig:
    experiment_name: str
    default_store: str
    artifact_dir: str
    preflight_timeout_s: float
    http_max_retries: int
    http_backoff_s: int
    spool_dir: str
    retention: RetentionConfig
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class MetricThreshold:
    direction: str
    threshold: float
    max_regression: float

    def __post_init__(self) -> None:
        _check(self.direction in ("greater", "lower"), "direction must be 'greater' or 'lower'")
        _check(self.max_regression >= 0, "max_regression must be >= 0")


@dataclass
class ValidationConfig:
    mode: str
    metrics: dict[str, MetricThreshold]

    def __post_init__(self) -> None:
        _check(
            self.mode in ("enforce", "dry-run"),
            "registry.validation.mode must be 'enforce' or 'dry-run'",
        )
        _check(len(self.metrics) > 0, "registry.validation.metrics must not be empty")


@dataclass
class RegistryConfig:
    model_name: str
    alias: str
    champion_alias: str
    previous_alias: str
    lock_timeout_s: float
    validation: ValidationConfig

    def __post_init__(self) -> None:
        aliases = {self.alias, self.champion_alias, self.previous_alias}
        _check(len(aliases) == 3, "registry aliases must be three different names")


@dataclass
class ComputeConfig:
    kind: str
    scheduler_address: str | None = None
    n_workers: int = 1
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    partition_size: str = "64MiB"

    def __post_init__(self) -> None:
        _check(self.kind in COMPUTE_KINDS, f"compute.kind must be one of {COMPUTE_KINDS}")
        _check(self.n_workers >= 1, "compute.n_workers must be >= 1")
        _check(self.threads_per_worker >= 1, "compute.threads_per_worker must be >= 1")


@dataclass
class ObjectiveConfig:
    metric: str
    direction: str

    def __post_init__(self) -> None:
        _check(
            self.direction in ("maximize", "minimize"),
            "objective.direction must be 'maximize' or 'minimize'",
        )


@dataclass
class Config:
    project: str
    seed: int
    objective: ObjectiveConfig
    compute: ComputeConfig
    data: DataConfig
{%- if cookiecutter.model_library == "xgboost" %}
    model: XGBoostConfig | LogisticRegressionConfig
{%- else %}
    model: LogisticRegressionConfig
{%- endif %}
    tracking: TrackingConfig
    registry: RegistryConfig
    raw: dict[str, Any]  # the composed configuration as plain data, for logging


def _typed(schema: type, node: Any, key: str) -> Any:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        full_key = f"{key}.{err.full_key}" if getattr(err, "full_key", None) else key
        reason = str(getattr(err, "msg", err)).splitlines()[0]
        raise ConfigError(f"invalid {full_key}: {reason}") from err


def from_container(cfg: DictConfig | dict[str, Any]) -> Config:
    """Validate a composed configuration (Hydra or params.yaml) into a typed Config."""
    raw = OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)
    assert isinstance(raw, dict)
    required = {"project", "seed", "objective", "compute", "data", "model", "tracking", "registry"}
    missing = required - raw.keys()
    _check(not missing, f"configuration is missing top-level keys: {sorted(missing)}")
    kind = raw["model"].get("kind")
    _check(
        kind in MODEL_SCHEMAS,
        f"model.kind {kind!r} is not one of {sorted(MODEL_SCHEMAS)}; pick a file in conf/model/",
    )
    _check(isinstance(raw["seed"], int), "seed must be an integer")
{%- if cookiecutter.model_library == "xgboost" %}
    _check(
        raw["compute"].get("kind") != "dask" or kind == "xgboost",
        "compute=dask trains XGBoost models only: use model=xgboost or compute=local",
    )
{%- endif %}
    return Config(
        project=str(raw["project"]),
        seed=raw["seed"],
        objective=_typed(ObjectiveConfig, raw["objective"], "objective"),
        compute=_typed(ComputeConfig, raw["compute"], "compute"),
        data=_typed(DataConfig, raw["data"], "data"),
        model=_typed(MODEL_SCHEMAS[kind], raw["model"], "model"),
        tracking=_typed(TrackingConfig, raw["tracking"], "tracking"),
        registry=_typed(RegistryConfig, raw["registry"], "registry"),
        raw=raw,
    )


def load_params(path: str | Path = PARAMS_FILE) -> Config:
    """Read the params file DVC stages use (composed from conf/ by `dvc exp run`)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found: run from the project root, where params.yaml lives.")
    return from_container(OmegaConf.load(path))


def compose(overrides: list[str] | None = None) -> DictConfig:
    """Compose conf/ with Hydra overrides, exactly as `dvc exp run -S` does."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides or [])


def flatten(node: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested config into dotted keys, e.g. {'model.max_depth': '6'}."""
    flat: dict[str, str] = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat
