"""Figures logged to MLflow and saved for DVC plots (plain Figures: pyplot keeps no state).

matplotlib is imported when a figure is drawn: commands that draw none do not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from mlrig import Scored


def confusion_matrix(counts: pd.DataFrame) -> Figure:
    """From the counts of (actual, predicted) pairs (metrics.confusion_counts)."""
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    figure = Figure(figsize=(5, 4.5))
    axis = figure.subplots()
    matrix = counts.pivot(index="actual", columns="predicted", values="count")
    display = ConfusionMatrixDisplay(matrix.to_numpy(), display_labels=list(matrix.index))
    display.plot(ax=axis, colorbar=False)
    axis.set_title("Confusion matrix (test)")
    return figure


def roc_curve(roc: pd.DataFrame, auc: float) -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 5))
    axis = figure.subplots()
    axis.plot(roc["fpr"], roc["tpr"], label=f"AUC = {auc:.3f}")
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axis.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC (test)")
    axis.legend(loc="lower right")
    return figure


def precision_recall_curve(points: pd.DataFrame, scored: Scored) -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 5))
    axis = figure.subplots()
    axis.plot(points["recall"], points["precision"], drawstyle="steps-post")
    prevalence = float(scored.y_true.mean())
    axis.axhline(prevalence, linestyle="--", color="grey", label=f"prevalence = {prevalence:.2f}")
    axis.set(xlabel="Recall", ylabel="Precision", title="Precision-recall (test)")
    axis.legend(loc="lower left")
    return figure


def feature_importance(importance: pd.DataFrame, top: int = 15) -> Figure:
    from matplotlib.figure import Figure

    head = importance.head(top).iloc[::-1]
    figure = Figure(figsize=(6, 0.35 * len(head) + 1), layout="tight")
    axis = figure.subplots()
    axis.barh(head["feature"], head["importance"])
    axis.set(xlabel="importance", title=f"Top {len(head)} features")
    return figure
