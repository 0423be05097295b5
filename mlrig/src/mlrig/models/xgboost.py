"""XGBoost model kinds: XGBoost's scikit-learn classifier, saved in XGBoost's native UBJSON
format; trained in this process or, with `compute=dask`, on a Dask cluster (`xgboost_dask`).

A project's kind gives its parameters and `arguments`, the classifier's keyword arguments.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import pruning
from ..config import ConfigError
from .base import Labelled, ModelRefused, ModelSpec, P, TrainResult, pinned

if TYPE_CHECKING:
    import dask.array as da
    import dask.dataframe as dd
    import numpy as np
    from xgboost import XGBClassifier

log = logging.getLogger(__name__)
# eval_set = [train, valid], named as XGBClassifier names them
EVALS = ("validation_0", "validation_1")
MODEL_CLASS = "xgboost.sklearn.XGBClassifier"  # the class MLflow's loader imports and builds
BOOSTER_CLASS = "xgboost.core.Booster"  # what a serving image builds: it answers P(1)


def progress(rounds: int) -> Any:
    """A training callback that logs a tenth of the way at a time: the round and the latest
    validation metrics; under `tune`, it reports them to the trial (`mlrig.pruning`)."""
    from xgboost.callback import TrainingCallback

    every = max(1, rounds // 10)

    class Progress(TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            done = epoch + 1
            latest = {name: float(v[-1]) for name, v in evals_log.get(EVALS[1], {}).items()}
            if done % every == 0 or done == rounds:
                shown = ", ".join(f"{name}={value:.4f}" for name, value in latest.items())
                log.info("round %d/%d: valid %s", done, rounds, shown)
            pruning.report(done, latest)  # a tuning trial the pruner stops raises here
            return False

    return Progress()


def history(evals: dict[str, dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per-iteration metrics by name, from XGBoost's evaluation log of [train, valid]."""
    return {
        f"iter_{split}_{metric}": [float(v) for v in values]
        for split, key in zip(("train", "valid"), EVALS, strict=True)
        for metric, values in evals[key].items()
    }


class XGBoostModel(ModelSpec[P]):
    """An `XGBClassifier` with the keyword arguments `arguments` gives (`n_estimators` and
    `early_stopping_rounds` among them); a missing value takes each split's learned default
    branch. Loaded by XGBoost's own parser alone."""

    flavor = "xgboost"
    requirements = frozenset({"mlflow", "xgboost", "xgboost-cpu"})
    flavor_keys = frozenset({"code", "data", "model_class", "model_format", "xgb_version"})
    handles_missing = True

    @abstractmethod
    def arguments(self, params: P, seed: int) -> dict[str, Any]:
        """The classifier's keyword arguments, the same locally and on Dask."""

    def check(self, params: P) -> None:
        """A CUDA device needs the CUDA build of xgboost (`make setup` installs the CPU one)."""
        import xgboost

        device = str(self.arguments(params, 0).get("device", "cpu"))
        if device.startswith("cuda") and not xgboost.build_info().get("USE_CUDA"):
            raise ConfigError(
                f"model.device={device} needs the CUDA build of xgboost; this venv has the CPU "
                "build: rm -rf .venv && make setup XGBOOST=cuda"
            )

    def fit(self, params: P, seed: int, train: Labelled, valid: Labelled) -> TrainResult:
        from xgboost import XGBClassifier

        arguments = self.arguments(params, seed)
        model = XGBClassifier(**arguments, callbacks=[progress(arguments["n_estimators"])])
        model.fit(
            train.features,
            train.target,
            eval_set=[(train.features, train.target), (valid.features, valid.target)],
            verbose=False,
        )
        model.callbacks = None  # the saved model keeps only JSON-serialisable settings
        best = model.best_iteration if arguments.get("early_stopping_rounds") else None
        return TrainResult(model, history(model.evals_result()), best)

    def fit_dask(
        self,
        params: P,
        seed: int,
        train: dd.DataFrame,
        valid: dd.DataFrame,
        features: list[str],
        target: str,
    ) -> TrainResult:
        """Fit on the default Dask client with the local arguments, each worker streaming its
        partitions (`xgboost_dask`); the model is a plain XGBClassifier, so it is saved,
        logged and loaded like a locally trained one."""
        from distributed import get_client
        from xgboost import XGBClassifier

        from . import xgboost_dask

        model = XGBClassifier(**self.arguments(params, seed))
        trained = xgboost_dask.fit(
            get_client(),
            model.get_xgb_params(),
            model.n_estimators,
            model.early_stopping_rounds or None,
            (train, valid),
            features,
            target,
            EVALS,
        )
        model.load_model(bytearray(trained.booster))
        return TrainResult(model, history(trained.history), trained.best_iteration)

    def scores_dask(self, model: XGBClassifier, features: dd.DataFrame) -> da.Array:
        """Probability of class 1, computed where the partitions are."""
        from xgboost import dask as dxgb

        return dxgb.inplace_predict(None, model.get_booster(), features)

    def importance(self, model: XGBClassifier) -> np.ndarray:
        import numpy as np

        return np.asarray(model.feature_importances_, dtype=float)

    def native_file(self, flavor: dict[str, Any]) -> str:
        return str(flavor.get("data"))

    def serving(self, flavor: dict[str, Any]) -> dict[str, Any]:
        return super().serving(flavor) | {"data": self.native_file(flavor)}

    def answering_probabilities(
        self, flavor: dict[str, Any], pyfunc: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The same file read as a Booster, whose predictions under the classifier's
        binary:logistic objective are P(1) for each row."""
        return flavor | {"model_class": BOOSTER_CLASS}, pyfunc

    def check_flavor(self, flavor: dict[str, Any]) -> None:
        """XGBoost's JSON or UBJSON, and the class MLflow's loader builds is XGBClassifier."""
        super().check_flavor(flavor)
        if flavor.get("model_format") not in ("ubj", "json"):
            raise ModelRefused(
                f"model_format {flavor.get('model_format')!r}: only XGBoost's JSON or UBJSON "
                "loads without running code"
            )
        if flavor.get("model_class") != MODEL_CLASS:
            raise ModelRefused(
                f"model_class {flavor.get('model_class')!r}: MLflow's loader imports and builds "
                f"that class; only {MODEL_CLASS} is served"
            )

    def read_native(self, path: Path) -> XGBClassifier:
        """XGBoost's own JSON/UBJSON parser."""
        from xgboost import XGBClassifier

        model = XGBClassifier()
        model.load_model(str(path))
        return model

    def save_options(self) -> dict[str, Any]:
        """UBJSON; the requirements name the XGBoost build installed (xgboost-cpu on the CPU
        group: a serving image then carries no CUDA libraries)."""
        from importlib.metadata import PackageNotFoundError, distribution

        try:
            build = distribution("xgboost-cpu").metadata["Name"]
        except PackageNotFoundError:
            build = "xgboost"
        return {"model_format": "ubj", "pip_requirements": pinned("mlflow", build)}
