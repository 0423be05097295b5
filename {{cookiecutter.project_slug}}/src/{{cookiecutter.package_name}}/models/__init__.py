"""The model kinds: one spec per kind, and the table that names them (`model.kind`).

A new model: a file here with its parameters and its spec, one entry in SPECS, and
`conf/model/<kind>.yaml` (README: "Where to change what").
"""

from typing import Any

from mlrig import ModelSpec

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
