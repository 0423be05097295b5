"""What a trained model is judged by, as the project builds it from held-out scores: metrics,
tables (DVC plots) and figures. The library scores the model, asks the project for its
report, logs it to the run and writes it for DVC (`reports/`)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

METRICS_FILE = Path("reports/metrics.json")
PLOTS_DIR = Path("reports/plots")
FIGURES_DIR = Path("reports/figures")


@dataclass(frozen=True)
class Scored:
    """One held-out split: the 0/1 labels and the model's probability of class 1."""

    y_true: np.ndarray
    y_score: np.ndarray


@dataclass(frozen=True)
class Evaluated:
    """What a project's report is built from: the test and valid splits scored, and the
    importance of each feature (`feature`, `importance`, highest first)."""

    test: Scored
    valid: Scored
    importance: pd.DataFrame


@dataclass
class Report:
    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]  # reports/plots/<name>.csv (DVC plots), plots/<name>.json
    figures: dict[str, Figure]  # reports/figures/<name>.png, plots/<name>.png


def importance(features: list[str], values: Any) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({"feature": features, "importance": values}).sort_values(
        "importance", ascending=False, ignore_index=True
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
