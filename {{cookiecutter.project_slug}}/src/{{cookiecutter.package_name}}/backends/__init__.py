"""The compute backends, and the only module that reads `compute.kind`.

A new backend: a file here with its parameters and its Backend, one entry in BACKENDS, and
`conf/compute/<kind>.yaml` (README: "Where to change what").
"""

from __future__ import annotations

from typing import Any

from .. import models
from ..config import ComputeParams, Config, chosen, typed
from .base import Backend, Splits
{%- if cookiecutter.model_library == "xgboost" %}
from .dask import DaskBackend
{%- endif %}
from .local import LocalBackend

__all__ = ["Backend", "Splits", "backend_for", "params"]

BACKENDS: dict[str, type[Backend[Any]]] = {
    LocalBackend.name: LocalBackend,
{%- if cookiecutter.model_library == "xgboost" %}
    DaskBackend.name: DaskBackend,
{%- endif %}
}


def named(kind: object) -> type[Backend[Any]]:
    """The backend class of a compute kind, e.g. `local`."""
    return chosen(BACKENDS, kind, "compute")


def params(section: dict[str, Any]) -> ComputeParams:
    """The `compute` section typed by its kind's parameters."""
    return typed(named(section.get("kind")).params, section, "compute")


def backend_for(cfg: Config) -> Backend[Any]:
    """The configured backend; refuses a model kind it cannot train."""
    backend = named(cfg.compute.kind)(cfg.data, cfg.seed, cfg.compute)
    backend.check(models.spec(cfg.model))
    return backend
