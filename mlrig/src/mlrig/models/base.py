"""What every model kind provides: its parameters, how it trains, its feature importance, and
its native format with an MLflow flavor (never pickle).

Heavy libraries (numpy, pandas, MLflow) are imported where they are used, so reading the
configuration and parsing a command line stay fast.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import yaml

from ..config import ModelParams
from ..errors import ProjectError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.models.model import ModelInfo

P = TypeVar("P", bound=ModelParams)


@dataclass
class TrainResult:
    model: Any
    # Per-iteration evaluation metrics, e.g. {"iter_valid_auc": [0.91, 0.93, ...]}; empty when
    # the model has no iterations to report.
    history: dict[str, list[float]] = field(default_factory=dict)
    best_iteration: int | None = None


@dataclass(frozen=True)
class Labelled:
    """Features and the 0/1 target of one split."""

    features: pd.DataFrame
    target: pd.Series


def pinned(*distributions: str) -> list[str]:
    """`name==version` of installed distributions: a logged model's environment is the one
    uv.lock installed."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in distributions]


def files_digest(folder: Path, but: str) -> str:
    """sha256 of the names and bytes of the files under `folder`, but those named `but`."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != but):
        digest.update(f"{file.relative_to(folder).as_posix()}\0".encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def stable_metadata(folder: Path) -> str:
    """Make a saved model directory the same bytes for the same model (DVC tracks it): MLflow
    writes a random model_uuid and the time into MLmodel. The uuid becomes a digest of the
    other files and the time is dropped (the MLflow run records both). Returns the uuid."""
    uuid = files_digest(folder, but="MLmodel")[:32]
    mlmodel = folder / "MLmodel"
    meta = yaml.safe_load(mlmodel.read_text())
    meta["model_uuid"] = uuid
    meta.pop("utc_time_created", None)
    mlmodel.write_text(yaml.safe_dump(meta, default_flow_style=False))
    return uuid


class ModelRefused(ProjectError):
    """A model from the registry is not in a format this project loads without running code."""


def inside(folder: Path, name: object) -> Path:
    """`folder/name`, refused unless it is a regular file inside `folder` (no `..`, no link)."""
    path = folder / str(name)
    if path.is_symlink() or not path.is_file() or folder.resolve() not in path.resolve().parents:
        raise ModelRefused(f"{name!r} is not a file inside the model directory")
    return path


class ModelSpec(ABC, Generic[P]):
    """One model kind. `name` is its `model.kind` (conf/model/<name>.yaml), `params` the
    schema of that file, `flavor` the MLflow flavor module that logs it (mlflow.<flavor>),
    `requirements` the only distributions its logged environment may name, `flavor_keys` the
    keys MLflow writes in the flavor's section of MLmodel, `handles_missing` whether it trains
    on features with missing values (data.missing_values=allow)."""

    name: ClassVar[str]
    params: ClassVar[type[ModelParams]]
    flavor: ClassVar[str]
    requirements: ClassVar[frozenset[str]]
    flavor_keys: ClassVar[frozenset[str]]  # what MLflow writes in the flavor's MLmodel section
    handles_missing: ClassVar[bool] = False

    def check(self, params: P) -> None:
        """Refuse what this machine cannot run, before any run starts (default: nothing)."""

    @abstractmethod
    def fit(self, params: P, seed: int, train: Labelled, valid: Labelled) -> TrainResult:
        """Fit on `train` (`valid`: early stopping and the per-iteration history)."""

    @abstractmethod
    def importance(self, model: Any) -> np.ndarray:
        """One non-negative importance per feature, in the order of the features."""

    @abstractmethod
    def save_options(self) -> dict[str, Any]:
        """The flavor's arguments that choose the native format and the pip requirements."""

    @abstractmethod
    def native_file(self, flavor: dict[str, Any]) -> str:
        """The model file the flavor's section of MLmodel names."""

    def serving(self, flavor: dict[str, Any]) -> dict[str, Any]:
        """The `python_function` section MLflow writes for this flavor (what serves the model;
        its `python_version` aside): the flavor's own loader and environment files."""
        env = {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
        return {"loader_module": f"mlflow.{self.flavor}", "env": env}

    def answering_probabilities(
        self, flavor: dict[str, Any], pyfunc: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The flavor and `python_function` sections of a served model (a serving image) that
        make `/invocations` answer probabilities rather than labels, through the flavor's own
        loader and a method of the native model (no code from the model's files)."""
        return flavor, pyfunc

    def check_flavor(self, flavor: dict[str, Any]) -> None:
        """Refuse a flavor section that MLflow would not write for this kind, or whose format
        or class could run code when a loader reads it (here: only `flavor_keys`, no `code`)."""
        extra = sorted(set(flavor) - self.flavor_keys)
        if extra:
            raise ModelRefused(f"the {self.flavor} flavor has keys MLflow does not write: {extra}")
        if flavor.get("code") is not None:
            raise ModelRefused(f"the {self.flavor} flavor names code to load ({flavor['code']!r})")

    def load_native(self, folder: Path, flavor: dict[str, Any]) -> Any:
        """Load a downloaded model directory with the native loader alone, after `check_flavor`
        (never a loader or a class that the model's MLmodel file names): files from the
        registry are untrusted."""
        self.check_flavor(flavor)
        return self.read_native(inside(folder, self.native_file(flavor)))

    @abstractmethod
    def read_native(self, path: Path) -> Any:
        """The model in the native file `path`, read by the native parser alone."""

    def scores(self, model: Any, features: pd.DataFrame) -> np.ndarray:
        """Probability of class 1 for each row."""
        import numpy as np

        return np.asarray(model.predict_proba(features)[:, 1])

    def flavor_module(self) -> ModuleType:
        return importlib.import_module(f"mlflow.{self.flavor}")

    def signature(self, model: Any, sample: pd.DataFrame) -> ModelSignature:
        """Input schema from the features; output: the predicted 0/1 labels."""
        from mlflow.models import infer_signature

        return infer_signature(sample, model.predict(sample))

    def save(self, model: Any, path: str | Path, sample: pd.DataFrame) -> str:
        """Write an MLflow model directory with signature and input example, byte-stable
        (`stable_metadata`); return its model_uuid."""
        shutil.rmtree(path, ignore_errors=True)
        self.flavor_module().save_model(
            model,
            path=str(path),
            signature=self.signature(model, sample),
            input_example=sample.head(5),
            **self.save_options(),
        )
        self.normalize(Path(path))
        return stable_metadata(Path(path))

    def normalize(self, folder: Path) -> None:
        """Make the native files of a saved model the same bytes for the same model (default:
        they are)."""

    def load(self, uri: str | Path) -> Any:
        """Load with the native flavor (keeps predict_proba), from a path or a models:/ URI."""
        return self.flavor_module().load_model(str(uri))

    def log(self, model: Any, sample: pd.DataFrame) -> ModelInfo:
        """Log the model to the active run with signature and input example."""
        return self.flavor_module().log_model(
            model,
            name="model",
            signature=self.signature(model, sample),
            input_example=sample.head(5),
            **self.save_options(),
        )
