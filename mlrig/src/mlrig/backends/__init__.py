"""The compute backends, and the only module that reads `compute.kind`: `local` (pandas in the
job's process) and `dask` (a Dask cluster; needs the `dask` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import ComputeParams, Config, chosen, typed
from .base import Backend, Splits
from .local import LocalBackend

if TYPE_CHECKING:
    from ..project import Project

__all__ = ["Backend", "Splits", "backend_for", "params"]


def _dask() -> type[Backend[Any]]:
    from .dask import DaskBackend  # imports nothing of Dask until a job uses it

    return DaskBackend


BACKENDS: dict[str, Any] = {"local": lambda: LocalBackend, "dask": _dask}


def named(kind: object) -> type[Backend[Any]]:
    """The backend class of a compute kind, e.g. `local`."""
    return chosen(BACKENDS, kind, "compute")()


def params(section: dict[str, Any]) -> ComputeParams:
    """The `compute` section typed by its kind's parameters."""
    return typed(named(section.get("kind")).params, section, "compute")


def backend_for(project: Project, cfg: Config) -> Backend[Any]:
    """The configured backend; refuses a model kind it cannot train."""
    backend = named(cfg.compute.kind)(cfg.data, cfg.seed, cfg.compute)
    backend.check(project.spec(cfg.model))
    return backend
