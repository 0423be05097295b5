"""What a project plugs into the library: its root folder, its model kinds, its data producers
and how it judges a model. Every command, stage and job of the library gets this object.

A project defines one (`src/<package>/project.py`):

    PROJECT = Project(
        root=Path(__file__).resolve().parents[2],
        package="my_package",
        models=models.SPECS,
        producers=data.PRODUCERS,
        metrics=metrics.score,
        report=report.build,
    )
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import (
    PARAMS_FILE,
    Config,
    ConfigError,
    DataConfig,
    ModelParams,
    MonitorConfig,
    ObjectiveConfig,
    ProducerParams,
    RegistryConfig,
    TrackingConfig,
    check,
    chosen,
    compose,
    read_params,
    to_plain,
    typed,
    unknown_key,
)

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from .commands import Command
    from .data import Producer
    from .models.base import ModelSpec
    from .report import Evaluated, Report, Scored

REQUIRED = ("project", "seed", "objective", "compute", "data", "model", "tracking", "registry")
OPTIONAL = ("monitor",)  # a project baked before conf/monitor/ gets its defaults


@dataclass(frozen=True)
class Project:
    """A project's own parts. `models`: model kind -> spec (`model.kind`); `producers`: name ->
    what writes the raw data where DVC cannot restore it (`data.producer.kind`); `metrics`:
    held-out scores -> named metrics (the validation gate compares these); `report`: a trained
    model's evaluation -> metrics, tables and figures (logged to its run, written for DVC);
    `commands`: the project's own commands besides the library's."""

    root: Path
    package: str
    models: Mapping[str, ModelSpec[Any]]
    producers: Mapping[str, Producer[Any]]
    metrics: Callable[[Scored, str], dict[str, float]]
    report: Callable[[Evaluated], Report]
    commands: Mapping[str, Command] = field(default_factory=dict)

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf"

    @property
    def cli(self) -> str:
        """How its command line is typed, for messages."""
        return f"python -m {self.package}.cli"

    def model(self, kind: object) -> ModelSpec[Any]:
        """The spec of a model kind, e.g. `logistic_regression`."""
        return chosen(self.models, kind, "model")

    def spec(self, params: ModelParams) -> ModelSpec[Any]:
        """The spec that trains and saves models with these parameters."""
        return self.model(params.kind)

    def for_flavors(self, flavors: Mapping[str, Any], source: str) -> ModelSpec[Any]:
        """The spec whose MLflow flavor an MLmodel file names (a registered model of any
        kind); refused when none of the project's kinds logs that flavor."""
        from .models.base import ModelRefused

        for candidate in self.models.values():
            if candidate.flavor in flavors:
                return candidate
        raise ModelRefused(
            f"{source} has flavors {sorted(flavors)}; this project loads only "
            f"{sorted({s.flavor for s in self.models.values()})}"
        )

    def producer(self, params: ProducerParams) -> Producer[Any]:
        return chosen(self.producers, params.kind, "data.producer")

    def from_container(self, cfg: DictConfig | dict[str, Any]) -> Config:
        """Validate a composed configuration (Hydra or params.yaml) into a typed Config; a
        backend that cannot train the model is refused here, before anything runs."""
        from . import backends

        raw = to_plain(cfg)
        missing = sorted(set(REQUIRED) - raw.keys())
        check(not missing, f"configuration is missing top-level keys: {missing}")
        unknown = sorted(raw.keys() - {*REQUIRED, *OPTIONAL})
        if unknown:
            raise unknown_key(str(unknown[0]), (*REQUIRED, *OPTIONAL))
        check(isinstance(raw["seed"], int), "seed must be an integer")
        model = raw["model"]
        config = Config(
            project=str(raw["project"]),
            seed=raw["seed"],
            objective=typed(ObjectiveConfig, raw["objective"], "objective"),
            compute=backends.params(raw["compute"]),
            data=self._data(raw["data"]),
            model=typed(self.model(model.get("kind")).params, model, "model"),
            tracking=typed(TrackingConfig, raw["tracking"], "tracking"),
            registry=typed(RegistryConfig, raw["registry"], "registry"),
            raw=raw,
            monitor=typed(MonitorConfig, raw.get("monitor") or {}, "monitor"),
        )
        backends.check(self, config)  # a backend that cannot train this model: now
        spec = self.spec(config.model)
        check(
            config.data.missing_values == "refuse" or spec.handles_missing,
            f"data.missing_values=allow needs a model kind that handles missing values; "
            f"{spec.name} does not (fill them, or choose another model)",
        )
        return config

    def _data(self, section: dict[str, Any]) -> DataConfig:
        data = typed(DataConfig, section, "data")
        if data.producer is None:
            return data
        if not isinstance(data.producer, dict):
            raise ConfigError("data.producer must be a mapping with a kind, or null")
        kind = data.producer.get("kind")
        params = typed(
            chosen(self.producers, kind, "data.producer").params, data.producer, "data.producer"
        )
        self.producer(params).check(params, data)
        return replace(data, producer=params)

    def load_params(self, path: str | Path = PARAMS_FILE) -> Config:
        """The configuration DVC stages run with: params.yaml of the current folder (a DVC
        experiment's own workspace under `dvc exp run --queue`)."""
        return self.from_container(read_params(path))

    def composed(self, overrides: list[str] | None = None) -> Config:
        """conf/ composed with Hydra overrides, typed."""
        return self.from_container(compose(self.conf_dir, overrides))
