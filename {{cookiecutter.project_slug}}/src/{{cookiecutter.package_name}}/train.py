"""The pure training core: configuration and data in, fitted model and history out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import xgboost
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from .config import Config, ConfigError, LogisticRegressionConfig, XGBoostConfig
from .data import Splits, features_and_target

EVAL_METRICS = ("logloss", "auc")


@dataclass
class TrainResult:
    model: Any
    # Per-iteration evaluation metrics, e.g. {"iter_valid_auc": [0.91, 0.93, ...]}; empty when
    # the model has no iterations to report.
    history: dict[str, list[float]] = field(default_factory=dict)
    best_iteration: int | None = None


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


def _xgboost(cfg: XGBoostConfig, seed: int, splits: Splits, data_cfg: Any) -> TrainResult:
    x_train, y_train = features_and_target(splits.train, data_cfg)
    x_valid, y_valid = features_and_target(splits.valid, data_cfg)
    model = XGBClassifier(**xgboost_params(cfg, seed))
    model.fit(x_train, y_train, eval_set=[(x_train, y_train), (x_valid, y_valid)], verbose=False)
    return xgboost_result(model, model, cfg)


def _logistic_regression(
    cfg: LogisticRegressionConfig, seed: int, splits: Splits, data_cfg: Any
) -> TrainResult:
    x_train, y_train = features_and_target(splits.train, data_cfg)
    model: Pipeline = make_pipeline(
        StandardScaler(),
        LogisticRegression(
            C=cfg.C, max_iter=cfg.max_iter, class_weight=cfg.class_weight, random_state=seed
        ),
    )
    model.fit(x_train, y_train)
    return TrainResult(model=model)


def train(cfg: Config, splits: Any) -> TrainResult:
    """Fit the configured model on the train split (valid split for early stopping).

    `splits`: pandas frames, or Dask frames with `compute=dask` (XGBoost on the cluster).
    """
    if cfg.compute.kind == "dask":
        from .compute import train_xgboost

        assert isinstance(cfg.model, XGBoostConfig)  # from_container refuses other models
        return train_xgboost(cfg.model, cfg.seed, splits, cfg.data)
    if isinstance(cfg.model, XGBoostConfig):
        return _xgboost(cfg.model, cfg.seed, splits, cfg.data)
    return _logistic_regression(cfg.model, cfg.seed, splits, cfg.data)
