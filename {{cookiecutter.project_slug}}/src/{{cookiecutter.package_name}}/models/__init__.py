"""The model kinds: one spec per kind, and the only module that reads `model.kind`.

A new model: a file here with its parameters and its ModelSpec, one entry in SPECS, and
`conf/model/<kind>.yaml` (README: "Where to change what").
"""

from __future__ import annotations

from typing import Any

from ..config import ModelParams, chosen, typed
from .base import ModelRefused, ModelSpec
from .logistic_regression import SPEC as LOGISTIC_REGRESSION
{%- if cookiecutter.model_library == "xgboost" %}
from .xgboost import SPEC as XGBOOST
{%- endif %}

SPECS: dict[str, ModelSpec[Any]] = {
{%- if cookiecutter.model_library == "xgboost" %}
    XGBOOST.name: XGBOOST,
{%- endif %}
    LOGISTIC_REGRESSION.name: LOGISTIC_REGRESSION,
}


def named(kind: object) -> ModelSpec[Any]:
    """The spec of a model kind, e.g. `logistic_regression`."""
    return chosen(SPECS, kind, "model")


def params(section: dict[str, Any]) -> ModelParams:
    """The `model` section typed by its kind's parameters."""
    return typed(named(section.get("kind")).params, section, "model")


def spec(params: ModelParams) -> ModelSpec[Any]:
    """The spec that trains and saves models with these parameters."""
    return named(params.kind)


def for_flavors(flavors: dict[str, Any], source: str) -> ModelSpec[Any]:
    """The spec whose MLflow flavor an MLmodel file names (a registered model of any kind)."""
    for candidate in SPECS.values():
        if candidate.flavor in flavors:
            return candidate
    raise ModelRefused(
        f"{source} has flavors {sorted(flavors)}; this project loads only "
        f"{sorted(s.flavor for s in SPECS.values())}"
    )
