"""The pure training core: configuration and data in, fitted model and history out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

{% if cookiecutter.model_library == "xgboost" %}import xgboost
{% endif %}from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
{%- if cookiecutter.model_library == "xgboost" %}
from xgboost import XGBClassifier

from .config import Config, ConfigError, LogisticRegressionConfig, XGBoostConfig
{%- else %}

from .config import Config, LogisticRegressionConfig
{%- endif %}
from .data import Splits, features_and_target

log = logging.getLogger(__name__)
{%- if cookiecutter.model_library == "xgboost" %}
EVAL_METRICS = ("logloss", "auc")
{%- endif %}


@dataclass
class TrainResult:
    model: Any
    # Per-iteration evaluation metrics, e.g. {"iter_valid_auc": [0.91, 0.93, ...]}; empty when
    # the model has no iterations to report.
    history: dict[str, list[float]] = field(default_factory=dict)
    best_iteration: int | None = None
{%- if cookiecutter.model_library == "xgboost" %}


def check_device(cfg: Config) -> None:
    """Refuse model.device=cuda before any run starts when xgboost was built without CUDA."""
    gpu = isinstance(cfg.model, XGBoostConfig) and cfg.model.device.startswith("cuda")
    if gpu and not xgboost.build_info().get("USE_CUDA"):
        raise ConfigError(
            f"model.device={cfg.model.device} needs the CUDA build of xgboost; this venv has "
            "the CPU build: rm -rf .venv && make setup XGBOOST=cuda"
        )


def xgboost_params(cfg: XGBoostConfig, seed: int) -> dict[str, Any]:
    """The estimator's arguments, shared by the local and the Dask path."""
    return {
        "n_estimators": cfg.n_estimators,
        "max_depth": cfg.max_depth,
        "learning_rate": cfg.learning_rate,
        "subsample": cfg.subsample,
        "colsample_bytree": cfg.colsample_bytree,
        "min_child_weight": cfg.min_child_weight,
        "reg_lambda": cfg.reg_lambda,
        "early_stopping_rounds": cfg.early_stopping_rounds or None,
        "eval_metric": list(EVAL_METRICS),
        "n_jobs": cfg.n_jobs,
        "random_state": seed,
        "tree_method": "hist",
        "device": cfg.device,
    }


def xgboost_result(fitted: Any, model: XGBClassifier, cfg: XGBoostConfig) -> TrainResult:
    """`model` with the per-iteration history of `fitted` (eval_set = [train, valid])."""
    evals = fitted.evals_result()
    history = {
        f"iter_{split}_{metric}": [float(v) for v in values]
        for split, key in (("train", "validation_0"), ("valid", "validation_1"))
        for metric, values in evals[key].items()
    }
    best = getattr(fitted, "best_iteration", None) if cfg.early_stopping_rounds else None
    return TrainResult(model=model, history=history, best_iteration=best)


class Progress(xgboost.callback.TrainingCallback):
    """Log a tenth of the way at a time: the round and the latest validation metrics."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds
        self.every = max(1, rounds // 10)

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        done = epoch + 1
        if done % self.every == 0 or done == self.rounds:
            latest = evals_log.get("validation_1", {})
            shown = ", ".join(f"{name}={values[-1]:.4f}" for name, values in latest.items())
            log.info("round %d/%d: valid %s", done, self.rounds, shown)
        return False  # never stops training


def _xgboost(cfg: XGBoostConfig, seed: int, splits: Splits, data_cfg: Any) -> TrainResult:
    x_train, y_train = features_and_target(splits.train, data_cfg)
    x_valid, y_valid = features_and_target(splits.valid, data_cfg)
    model = XGBClassifier(**xgboost_params(cfg, seed), callbacks=[Progress(cfg.n_estimators)])
    model.fit(x_train, y_train, eval_set=[(x_train, y_train), (x_valid, y_valid)], verbose=False)
    model.callbacks = None  # the saved model keeps only JSON-serialisable settings
    return xgboost_result(model, model, cfg)
{%- endif %}


def _logistic_regression(
    cfg: LogisticRegressionConfig, seed: int, splits: Splits, data_cfg: Any
) -> TrainResult:
    x_train, y_train = features_and_target(splits.train, data_cfg)
    log.info("fitting logistic regression on %d rows", len(x_train))
    model: Pipeline = make_pipeline(
        StandardScaler(),
        LogisticRegression(
            C=cfg.C, max_iter=cfg.max_iter, class_weight=cfg.class_weight, random_state=seed
        ),
    )
    model.fit(x_train, y_train)
    return TrainResult(model=model)


def train(cfg: Config, splits: Any) -> TrainResult:
{%- if cookiecutter.model_library == "xgboost" %}
    """Fit the configured model on the train split (valid split for early stopping).

    `splits`: pandas frames, or Dask frames with `compute=dask` (XGBoost on the cluster).
    """
    if cfg.compute.kind == "dask":
        from .compute import train_xgboost

        assert isinstance(cfg.model, XGBoostConfig)  # from_container refuses other models
        return train_xgboost(cfg.model, cfg.seed, splits, cfg.data)
    if isinstance(cfg.model, XGBoostConfig):
        return _xgboost(cfg.model, cfg.seed, splits, cfg.data)
{%- else %}
    """Fit the configured model on the train split."""
{%- endif %}
    return _logistic_regression(cfg.model, cfg.seed, splits, cfg.data)
