"""Held-out metrics and the curves behind the plots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm


@dataclass
class Evaluation:
    metrics: dict[str, float]
    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray


def evaluate(model: Any, features: pd.DataFrame, target: pd.Series, prefix: str) -> Evaluation:
    """Score a fitted binary classifier; metric names are prefixed, e.g. `test_auc`."""
    return score(target.to_numpy(), model.predict_proba(features)[:, 1], prefix)


def score(y_true: np.ndarray, y_score: np.ndarray, prefix: str) -> Evaluation:
    """Metrics from labels and scores (probability of class 1)."""
    y_pred = (y_score >= 0.5).astype(int)
    values = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0),
        "auc": skm.roc_auc_score(y_true, y_score),
        "logloss": skm.log_loss(y_true, y_score, labels=[0, 1]),
    }
    return Evaluation(
        metrics={f"{prefix}_{name}": float(value) for name, value in values.items()},
        y_true=y_true,
        y_pred=y_pred,
        y_score=y_score,
    )


def roc_points(evaluation: Evaluation) -> pd.DataFrame:
    fpr, tpr, _ = skm.roc_curve(evaluation.y_true, evaluation.y_score)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def precision_recall_points(evaluation: Evaluation) -> pd.DataFrame:
    precision, recall, _ = skm.precision_recall_curve(evaluation.y_true, evaluation.y_score)
    return pd.DataFrame({"recall": recall, "precision": precision})


def feature_importance(model: Any, features: list[str]) -> pd.DataFrame:
    """Importance per feature: gain-based for trees, |coefficient| for linear models."""
    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    if hasattr(estimator, "feature_importances_"):
        values = np.asarray(estimator.feature_importances_, dtype=float)
    else:
        values = np.abs(np.ravel(estimator.coef_))
    frame = pd.DataFrame({"feature": features, "importance": values})
    return frame.sort_values("importance", ascending=False, ignore_index=True)
