"""Held-out metrics of a binary classifier and the curves behind the plots.

scikit-learn is imported when a metric is computed: ~1.5 s that the prepare stage, which
computes none, does not pay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Evaluation:
    metrics: dict[str, float]
    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray


def score(y_true: np.ndarray, y_score: np.ndarray, prefix: str) -> Evaluation:
    """Metrics from labels and scores (probability of class 1)."""
    from sklearn import metrics as skm

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
    from sklearn import metrics as skm

    fpr, tpr, _ = skm.roc_curve(evaluation.y_true, evaluation.y_score)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def precision_recall_points(evaluation: Evaluation) -> pd.DataFrame:
    from sklearn import metrics as skm

    precision, recall, _ = skm.precision_recall_curve(evaluation.y_true, evaluation.y_score)
    return pd.DataFrame({"recall": recall, "precision": precision})
