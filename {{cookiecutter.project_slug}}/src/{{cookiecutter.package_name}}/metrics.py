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

CURVE_POINTS = 1_000  # the most points a curve's table keeps: enough to draw it, cheap to log


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
    return thinned(pd.DataFrame({"fpr": fpr, "tpr": tpr}))


def precision_recall_points(scored: Scored) -> pd.DataFrame:
    import pandas as pd
    from sklearn import metrics as skm

    precision, recall, _ = skm.precision_recall_curve(
        scored.y_true, scored.y_score, drop_intermediate=True
    )
    return thinned(pd.DataFrame({"recall": recall, "precision": precision}))


def thinned(curve: pd.DataFrame) -> pd.DataFrame:
    """At most CURVE_POINTS of a curve's points, evenly spaced along it, both ends kept (a
    curve of a large test split has a point per distinct score: one per row)."""
    import numpy as np

    if len(curve) <= CURVE_POINTS:
        return curve
    kept = np.unique(np.linspace(0, len(curve) - 1, CURVE_POINTS).round().astype(int))
    return curve.iloc[kept].reset_index(drop=True)


def confusion_counts(scored: Scored) -> pd.DataFrame:
    """The confusion matrix as four rows: `actual`, `predicted` and their `count` (DVC draws
    it with .dvc/plots/confusion_counts.json, which sums `count`)."""
    import pandas as pd
    from sklearn import metrics as skm

    matrix = skm.confusion_matrix(scored.y_true, predicted(scored), labels=[0, 1])
    cells = [(actual, guess, int(matrix[actual, guess])) for actual in (0, 1) for guess in (0, 1)]
    return pd.DataFrame(cells, columns=["actual", "predicted", "count"])
