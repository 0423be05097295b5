"""What a trained model is judged by: metrics on the valid and test splits, the test split's
curves and confusion, the importance of each feature, and their figures. mlrig logs the
report to the run and writes it for DVC (reports/: metrics.json, plots/, figures/)."""

from __future__ import annotations

from mlrig import Evaluated, Report

from . import plots
from .metrics import confusion_counts, precision_recall_points, roc_points, score


def build(evaluated: Evaluated) -> Report:
    test = evaluated.test
    metrics = {**score(evaluated.valid, "valid"), **score(test, "test")}
    roc, precision_recall = roc_points(test), precision_recall_points(test)
    confusion = confusion_counts(test)
    return Report(
        metrics=metrics,
        tables={
            "roc": roc,
            "precision_recall": precision_recall,
            "confusion": confusion,
            "importance": evaluated.importance,
        },
        figures={
            "confusion_matrix": plots.confusion_matrix(confusion),
            "roc_curve": plots.roc_curve(roc, metrics["test_auc"]),
            "precision_recall_curve": plots.precision_recall_curve(precision_recall, test),
            "feature_importance": plots.feature_importance(evaluated.importance),
        },
    )
