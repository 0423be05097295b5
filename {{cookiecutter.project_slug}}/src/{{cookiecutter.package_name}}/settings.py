"""The typed Config of a job: `params.yaml` (DVC stages) or `conf/` composed with overrides
(Hydra, `mlflow run`). The model and compute sections are typed by their kind's own class, and
a backend that cannot train the model is refused here, before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from . import backends, models
from .config import (
    PARAMS_FILE,
    Config,
    DataConfig,
    ObjectiveConfig,
    RegistryConfig,
    TrackingConfig,
    check,
    compose,
    read_params,
    to_plain,
    typed,
    unknown_key,
)

REQUIRED = ("project", "seed", "objective", "compute", "data", "model", "tracking", "registry")


def from_container(cfg: DictConfig | dict[str, Any]) -> Config:
    """Validate a composed configuration (Hydra or params.yaml) into a typed Config."""
    raw = to_plain(cfg)
    missing = sorted(set(REQUIRED) - raw.keys())
    check(not missing, f"configuration is missing top-level keys: {missing}")
    unknown = sorted(raw.keys() - set(REQUIRED))
    if unknown:
        raise unknown_key(str(unknown[0]), REQUIRED)
    check(isinstance(raw["seed"], int), "seed must be an integer")
    config = Config(
        project=str(raw["project"]),
        seed=raw["seed"],
        objective=typed(ObjectiveConfig, raw["objective"], "objective"),
        compute=backends.params(raw["compute"]),
        data=typed(DataConfig, raw["data"], "data"),
        model=models.params(raw["model"]),
        tracking=typed(TrackingConfig, raw["tracking"], "tracking"),
        registry=typed(RegistryConfig, raw["registry"], "registry"),
        raw=raw,
    )
    backends.backend_for(config)  # a backend that cannot train this model is refused now
    spec = models.spec(config.model)
    check(
        config.data.missing_values == "refuse" or spec.handles_missing,
        f"data.missing_values=allow needs a model kind that handles missing values; "
        f"{spec.name} does not (fill them, or choose another model)",
    )
    return config


def load_params(path: str | Path = PARAMS_FILE) -> Config:
    """The configuration DVC stages run with."""
    return from_container(read_params(path))


def composed(overrides: list[str] | None = None) -> Config:
    """conf/ composed with Hydra overrides, typed."""
    return from_container(compose(overrides))
