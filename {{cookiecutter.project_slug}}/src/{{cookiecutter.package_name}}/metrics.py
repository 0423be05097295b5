"""Held-out metrics of a binary classifier and the curves behind the plots: what the
validation gate compares (conf/registry/) and what each run reports.

scikit-learn is imported when a metric is computed: the prepare stage, which computes none,
does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from mlrig import Scored


def score(scored: Scored, prefix: str) -> dict[str, float]:
    """Metrics from labels and scores (probability of class 1), named `<prefix>_<metric>`."""
    from sklearn import metrics as skm

    y_true, y_score = scored.y_true, scored.y_score
    y_pred = predicted(scored)
    values = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0),
        "auc": skm.roc_auc_score(y_true, y_score),
        "logloss": skm.log_loss(y_true, y_score, labels=[0, 1]),
    }
    return {f"{prefix}_{name}": float(value) for name, value in values.items()}


def predicted(scored: Scored) -> np.ndarray:
    """The predicted labels: class 1 from a score of one half."""
    return (scored.y_score >= 0.5).astype(int)


def roc_points(scored: Scored) -> pd.DataFrame:
    import pandas as pd
    from sklearn import metrics as skm

    fpr, tpr, _ = skm.roc_curve(scored.y_true, scored.y_score)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def precision_recall_points(scored: Scored) -> pd.DataFrame:
    import pandas as pd
    from sklearn import metrics as skm

    precision, recall, _ = skm.precision_recall_curve(scored.y_true, scored.y_score)
    return pd.DataFrame({"recall": recall, "precision": precision})
