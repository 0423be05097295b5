"""Save, load and log models with their MLflow flavor, in native formats (no pickle)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
{%- if cookiecutter.model_library == "xgboost" %}
import mlflow.xgboost
{%- endif %}
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo


def _flavor(kind: str) -> tuple[Any, dict[str, Any]]:
{%- if cookiecutter.model_library == "xgboost" %}
    """The flavor module and its arguments: XGBoost's UBJSON, scikit-learn's skops."""
    if kind == "xgboost":
        return mlflow.xgboost, {
            "model_format": "ubj",
            "pip_requirements": mlflow.xgboost.get_default_pip_requirements(),
        }
{%- else %}
    """The flavor module and its arguments: scikit-learn's skops (never pickle)."""
{%- endif %}
    return mlflow.sklearn, {
        "serialization_format": mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        "pip_requirements": mlflow.sklearn.get_default_pip_requirements(include_skops=True),
    }


def signature(model: Any, features: pd.DataFrame) -> ModelSignature:
    """Input schema from the features; output: the predicted 0/1 labels."""
    return infer_signature(features, model.predict(features))


def save(model: Any, kind: str, path: str | Path, features: pd.DataFrame) -> None:
    """Write an MLflow model directory (the DVC output of the train stage)."""
    module, kwargs = _flavor(kind)
    shutil.rmtree(path, ignore_errors=True)
    module.save_model(
        model,
        path=str(path),
        signature=signature(model, features),
        input_example=features.head(5),
        **kwargs,
    )


def load(kind: str, uri: str | Path) -> Any:
    """Load with the native flavor (keeps predict_proba), from a path or a models:/ URI."""
    module, _ = _flavor(kind)
    return module.load_model(str(uri))


def log(model: Any, kind: str, features: pd.DataFrame) -> ModelInfo:
    """Log the model to the active run with signature and input example."""
    module, kwargs = _flavor(kind)
    return module.log_model(
        model,
        name="model",
        signature=signature(model, features),
        input_example=features.head(5),
        **kwargs,
    )
