"""What a trained model is judged by: held-out metrics (valid and test), the curves and the
feature importance behind the plots, and their figures. Written for DVC; logged to the run."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from . import plots
from .backends import Backend, Splits
from .metrics import precision_recall_points, roc_points
from .models.base import ModelSpec

METRICS_FILE = Path("reports/metrics.json")
PLOTS_DIR = Path("reports/plots")
FIGURES_DIR = Path("reports/figures")


@dataclass
class Report:
    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]


def build(backend: Backend[Any], spec: ModelSpec[Any], model: Any, splits: Splits[Any]) -> Report:
    """Metrics on the valid and test splits; test-split curves; importance per feature."""
    test = backend.evaluate(spec, model, splits.test, "test")
    valid = backend.evaluate(spec, model, splits.valid, "valid")
    roc = roc_points(test)
    precision_recall = precision_recall_points(test)
    importance = pd.DataFrame(
        {"feature": backend.data.features, "importance": spec.importance(model)}
    ).sort_values("importance", ascending=False, ignore_index=True)
    confusion = pd.DataFrame({"actual": test.y_true, "predicted": test.y_pred})
    return Report(
        metrics={**valid.metrics, **test.metrics},
        tables={
            "roc": roc,
            "precision_recall": precision_recall,
            "confusion": confusion,
            "importance": importance,
        },
        figures={
            "confusion_matrix": plots.confusion_matrix(test),
            "roc_curve": plots.roc_curve(roc, test.metrics["test_auc"]),
            "precision_recall_curve": plots.precision_recall_curve(precision_recall, test),
            "feature_importance": plots.feature_importance(importance),
        },
    )


def write(result: Report) -> None:
    """The DVC metrics and plots files."""
    METRICS_FILE.parent.mkdir(parents=True, exist_ok=True)
    METRICS_FILE.write_text(json.dumps(result.metrics, indent=2, sort_keys=True) + "\n")
    for folder in (PLOTS_DIR, FIGURES_DIR):  # persisted DVC outputs: replace them all
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for name, table in result.tables.items():
        table.to_csv(PLOTS_DIR / f"{name}.csv", index=False)
    for name, figure in result.figures.items():
        figure.savefig(FIGURES_DIR / f"{name}.png", dpi=100, bbox_inches="tight")
