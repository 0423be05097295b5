"""The compute backends, and the only module that reads `compute.kind`: `local` (pandas in the
job's process) and `dask` (a Dask cluster; needs the `dask` extra). Configuring one imports
neither pandas nor Dask (`kinds.py`); a job imports its backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import ComputeParams, Config, chosen, typed
from .base import Backend, Splits
from .kinds import PARAMS, check_trainable

if TYPE_CHECKING:
    from ..project import Project

__all__ = ["Backend", "Splits", "backend_for", "check", "params"]


def _local() -> type[Backend[Any]]:
    from .local import LocalBackend

    return LocalBackend


def _dask() -> type[Backend[Any]]:
    from .dask import DaskBackend  # imports nothing of Dask until a job uses it

    return DaskBackend


BACKENDS: dict[str, Any] = {"local": _local, "dask": _dask}


def named(kind: object) -> type[Backend[Any]]:
    """The backend class of a compute kind, e.g. `local`."""
    return chosen(BACKENDS, kind, "compute")()


def params(section: dict[str, Any]) -> ComputeParams:
    """The `compute` section typed by its kind's parameters."""
    kind = section.get("kind")
    return typed(chosen(PARAMS, kind, "compute"), section, "compute")


def check(project: Project, cfg: Config) -> None:
    """Refuse a model kind the configured backend cannot train."""
    check_trainable(cfg.compute.kind, project.spec(cfg.model))


def backend_for(project: Project, cfg: Config) -> Backend[Any]:
    """The configured backend; refuses a model kind it cannot train."""
    check(project, cfg)
    return named(cfg.compute.kind)(cfg.data, cfg.seed, cfg.compute)
