"""Typed configuration sections, and the raw configuration they are read from.

A project's `conf/` (Hydra) is the single source; its `params.yaml` is the composition, which
the DVC stages read. The `model`, `compute` and `data.producer` sections are typed by their
kind's own class (the project's model and producer tables, the library's backends); the
project assembles the whole `Config` (`Project.load_params`, `Project.composed`).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from .errors import ProjectError

PARAMS_FILE = "params.yaml"


class ConfigError(ProjectError):
    """The configuration is invalid; the message names the key and the rule."""


T = TypeVar("T")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def chosen(table: Mapping[str, T], kind: object, group: str) -> T:
    """The entry of a kind table (models/, backends/) for the kind that the conf group `group`
    names; an unknown kind is refused with the choices."""
    if kind not in table:
        raise ConfigError(
            f"{group}.kind {kind!r} is not one of {sorted(table)}; pick a file in conf/{group}/"
        )
    return table[str(kind)]


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
    missing_values: str = "refuse"  # gaps in features: refuse | allow (the model handles them)
    # What writes the raw data where the DVC remote cannot: {kind: <a producer of the project's
    # table>, ...its parameters}; typed by the project (`Project.from_container`). None: only
    # `dvc pull` restores it.
    producer: Any = None

    def __post_init__(self) -> None:
        check(0 < self.test_size < 1, "data.test_size must be between 0 and 1")
        check(0 < self.valid_size < 1, "data.valid_size must be between 0 and 1")
        check(self.test_size + self.valid_size < 1, "data.test_size + data.valid_size must be < 1")
        check(len(self.features) > 0, "data.features must list at least one column")
        check(self.target not in self.features, "data.target must not be one of data.features")
        check(
            self.missing_values in ("refuse", "allow"),
            "data.missing_values must be refuse or allow",
        )


@dataclass
class ModelParams:
    """Base of every model kind's parameters (the project's `models/<kind>.py`,
    `conf/model/<kind>.yaml`)."""

    kind: str


@dataclass
class ComputeParams:
    """Base of every compute backend's parameters (`mlrig.backends`, `conf/compute/`)."""

    kind: str


@dataclass
class ProducerParams:
    """Base of every data producer's parameters (the project's producer table,
    `data.producer` in `conf/data/<name>.yaml`)."""

    kind: str


@dataclass
class RetentionConfig:
    failed_run_days: float
    purge_after_days: float
    stale_running_hours: float = 24.0  # a RUNNING run from elsewhere, this old, is stale

    def __post_init__(self) -> None:
        check(self.failed_run_days >= 0, "tracking.retention.failed_run_days must be >= 0")
        check(self.purge_after_days >= 0, "tracking.retention.purge_after_days must be >= 0")
        check(self.stale_running_hours > 0, "tracking.retention.stale_running_hours must be > 0")


@dataclass
class TrackingConfig:
    experiment_name: str
    default_store: str
    artifact_dir: str
    preflight_timeout_s: float
    http_max_retries: int
    http_backoff_s: int
    spool_dir: str
    on_server_loss: str
    retention: RetentionConfig
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(
            self.on_server_loss in ("auto", "spool", "fail"),
            "tracking.on_server_loss must be auto, spool or fail",
        )


@dataclass
class MetricThreshold:
    direction: str
    threshold: float
    max_regression: float

    def __post_init__(self) -> None:
        check(self.direction in ("greater", "lower"), "direction must be 'greater' or 'lower'")
        check(self.max_regression >= 0, "max_regression must be >= 0")


@dataclass
class ValidationConfig:
    mode: str
    metrics: dict[str, MetricThreshold]

    def __post_init__(self) -> None:
        check(
            self.mode in ("enforce", "dry-run"),
            "registry.validation.mode must be 'enforce' or 'dry-run'",
        )
        check(len(self.metrics) > 0, "registry.validation.metrics must not be empty")


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
        check(len(aliases) == 3, "registry aliases must be three different names")


@dataclass
class ObjectiveConfig:
    metric: str
    direction: str

    def __post_init__(self) -> None:
        check(
            self.direction in ("maximize", "minimize"),
            "objective.direction must be 'maximize' or 'minimize'",
        )


@dataclass
class AlertConfig:
    """Where a drift breach or a failed scoring is told: a Slack-compatible webhook whose URL
    (a secret) is in the environment variable `webhook_env`, and, with `dispatch`, a GitHub
    `repository_dispatch` of `event_type` (GITHUB_REPOSITORY, GITHUB_TOKEN) that starts the
    retraining workflow. Each is tried `attempts` times, `timeout_s` each."""

    webhook_env: str = "MONITOR_WEBHOOK_URL"
    dispatch: bool = False
    event_type: str = "retrain"
    attempts: int = 3
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        check(self.attempts >= 1, "monitor.alert.attempts must be >= 1")
        check(self.timeout_s > 0, "monitor.alert.timeout_s must be > 0")
        check(bool(self.webhook_env.strip()), "monitor.alert.webhook_env must name a variable")


@dataclass
class MonitorConfig:
    """Scoring checks (conf/monitor/): the data-quality rules derived at training time, and
    drift of each feature and of the predictions against the training reference, as the
    population stability index (PSI) over `bins` quantile bins of the reference."""

    bins: int = 10
    feature_psi: float = 0.2  # a feature whose PSI exceeds this has drifted
    prediction_psi: float = 0.2  # the same for the predicted probability
    range_tolerance: float = 1.0  # a value may pass the training range by this share of it
    max_categories: int = 20  # an integer feature with at most this many values: categories
    batch_rows: int = 100_000  # rows scored at a time (memory stays bounded)
    alert: AlertConfig = field(default_factory=AlertConfig)

    def __post_init__(self) -> None:
        check(2 <= self.bins <= 100, "monitor.bins must be between 2 and 100")
        check(self.feature_psi > 0, "monitor.feature_psi must be > 0")
        check(self.prediction_psi > 0, "monitor.prediction_psi must be > 0")
        check(self.range_tolerance >= 0, "monitor.range_tolerance must be >= 0")
        check(0 <= self.max_categories <= 1000, "monitor.max_categories must be between 0 and 1000")
        check(self.batch_rows >= 1, "monitor.batch_rows must be >= 1")


@dataclass
class Config:
    project: str
    seed: int
    objective: ObjectiveConfig
    compute: ComputeParams
    data: DataConfig
    model: ModelParams
    tracking: TrackingConfig
    registry: RegistryConfig
    raw: dict[str, Any]  # the composed configuration as plain data, for logging
    monitor: MonitorConfig = field(default_factory=MonitorConfig)  # conf/monitor/ (optional)


def unknown_key(full_key: str, known: Iterable[str]) -> ConfigError:
    """A key no schema has, with the closest known one (a typo's likeliest fix)."""
    parent, _, name = full_key.rpartition(".")
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean {'.'.join(filter(None, [parent, close[0]]))}?" if close else ""
    return ConfigError(f"unknown key {full_key}: {hint or 'no such setting in conf/'}")


def typed(schema: type, node: Any, key: str) -> Any:
    """`node` as an instance of the dataclass `schema`; a ConfigError names `key` and the rule."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        full_key = f"{key}.{err.full_key}" if getattr(err, "full_key", None) else key
        owner = getattr(err, "object_type", None)
        if isinstance(err, ConfigKeyError) and owner and dataclasses.is_dataclass(owner):
            raise unknown_key(full_key, (f.name for f in dataclasses.fields(owner))) from err
        reason = str(getattr(err, "msg", err)).splitlines()[0]
        raise ConfigError(f"invalid {full_key}: {reason}") from err


def to_plain(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """A composed configuration as plain, resolved data."""
    raw = OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)
    assert isinstance(raw, dict)
    return raw


def read_params(path: str | Path) -> dict[str, Any]:
    """The params file DVC stages read (composed from conf/ by `dvc exp run`)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found: run from the project root, where params.yaml lives.")
    try:
        loaded = OmegaConf.load(path)
    except yaml.YAMLError as error:
        raise not_yaml(path, error) from error
    return to_plain(loaded)


def not_yaml(path: Path, error: yaml.YAMLError) -> ConfigError:
    """A file the project reads that YAML cannot parse: where, what, and the way back."""
    mark = getattr(error, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return ConfigError(
        f"{path} is not valid YAML{where}: {getattr(error, 'problem', None) or error}. "
        f"`git checkout {path}` restores the committed one."
    )


def _one_line(message: str) -> str:
    """Hydra's composition error on one line: its first, and the options it lists."""
    first, *rest = message.splitlines()
    listed = next((i for i, line in enumerate(rest) if line.startswith("Available options")), None)
    options = []
    for line in rest[listed + 1 :] if listed is not None else []:
        if not line.startswith("\t"):
            break
        options.append(line.strip())
    return f"{first}; the choices: {', '.join(options)}" if options else first


def compose(conf_dir: Path, overrides: list[str] | None = None) -> DictConfig:
    """Compose `conf_dir` with Hydra overrides, exactly as `dvc exp run -S` does."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import ConfigCompositionException

    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        try:
            return hydra_compose(config_name="config", overrides=overrides or [])
        except ConfigCompositionException as err:
            full_key = getattr(err.__cause__, "full_key", None)
            if (
                not isinstance(err.__cause__, (ConfigKeyError, ConfigAttributeError))
                or not full_key
            ):
                raise ConfigError(_one_line(str(err))) from err
            # Hydra would suggest appending the key (+key=value): a typo is likelier.
            base = hydra_compose(config_name="config")
            parent = (
                OmegaConf.select(base, full_key.rpartition(".")[0]) if "." in full_key else base
            )
            known = list(parent.keys()) if isinstance(parent, DictConfig) else []
            raise unknown_key(full_key, map(str, known)) from err


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
