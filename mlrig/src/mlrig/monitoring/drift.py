"""Drift of a batch against the training reference: the population stability index (PSI) of
each feature, and of the model's probability of class 1, over the reference's bins. Counts
add up partition by partition, so memory stays bounded however large the batch."""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ProjectError

METRIC_UNSAFE = re.compile(r"[^\w\-. /]")  # MLflow's metric names: these characters only

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

    from ..config import MonitorConfig
    from .profile import Bins, Profile

PREDICTION = "prediction"  # the probability of class 1, beside the features
SMALLEST_SHARE = 1e-4  # an empty bin's share, so that the logarithm stays finite
SAMPLED_ROWS = 20_000  # a partition's feature rows counted, at least (all of a smaller one)


class DriftError(ProjectError):
    """The batch has drifted from the training reference past the thresholds."""


def psi(expected: list[float], counts: np.ndarray) -> float:
    """Population stability index of observed `counts` against the `expected` shares."""
    import numpy as np

    total = counts.sum()
    if total == 0:
        return 0.0
    actual = np.clip(counts / total, SMALLEST_SHARE, None)
    reference = np.clip(np.asarray(expected), SMALLEST_SHARE, None)
    return float(np.sum((actual - reference) * np.log(actual / reference)))


class Histograms:
    """The batch's counts in the reference's bins, per feature and for the predictions."""

    def __init__(self, profile: Profile) -> None:
        import numpy as np

        self.bins: dict[str, Bins] = {f.name: f.bins for f in profile.features}
        self.bins[PREDICTION] = profile.prediction
        self.counts = {n: np.zeros(len(b.shares), dtype=np.int64) for n, b in self.bins.items()}

    def add(self, name: str, values: np.ndarray) -> None:
        self.counts[name] += self.bins[name].counts(values)

    def add_features(self, partition: pd.DataFrame) -> None:
        """Count a systematic sample of the partition's rows: every k-th, at least
        SAMPLED_ROWS of them (PSI over 10 bins moves by ~1e-4 from sampling at that size)."""
        import numpy as np

        step = max(1, len(partition) // SAMPLED_ROWS)
        for name in self.bins:
            if name != PREDICTION:
                values = partition[name].to_numpy(dtype=float, na_value=np.nan)
                self.add(name, values[::step])

    def indices(self) -> dict[str, float]:
        return {name: psi(self.bins[name].shares, self.counts[name]) for name in self.bins}


@dataclass(frozen=True)
class Drift:
    """PSI per feature and of the predictions, against the thresholds of conf/monitor/."""

    indices: dict[str, float]
    feature_psi: float
    prediction_psi: float

    def threshold(self, name: str) -> float:
        return self.prediction_psi if name == PREDICTION else self.feature_psi

    @property
    def drifted(self) -> list[str]:
        """What breached its threshold, the worst first."""
        over = [name for name, value in self.indices.items() if value > self.threshold(name)]
        return sorted(over, key=lambda name: -self.indices[name])

    def metrics(self) -> dict[str, float]:
        """psi_<column> (characters MLflow refuses in a metric name become `_`), the largest
        feature PSI and how many features drifted."""
        features = [v for name, v in self.indices.items() if name != PREDICTION]
        return {
            **{f"psi_{METRIC_UNSAFE.sub('_', n)}": v for n, v in self.indices.items()},
            "psi_max_feature": max(features, default=0.0),
            "drifted_features": float(len([n for n in self.drifted if n != PREDICTION])),
        }

    def check(self, source: str) -> None:
        if self.drifted:
            shown = ", ".join(f"{n} (PSI {self.indices[n]:.3f})" for n in self.drifted)
            raise DriftError(
                f"{source} has drifted from the training data: {shown}; thresholds "
                f"monitor.feature_psi={self.feature_psi:g}, "
                f"monitor.prediction_psi={self.prediction_psi:g}. Predictions were written; "
                "the drift report is logged to the scoring run."
            )


def measure(histograms: Histograms, settings: MonitorConfig) -> Drift:
    return Drift(histograms.indices(), settings.feature_psi, settings.prediction_psi)


def summary(drift: Drift) -> Figure:
    """A bar per feature (and the predictions), its PSI against its threshold."""
    from matplotlib.figure import Figure

    names = sorted(drift.indices, key=lambda name: drift.indices[name])
    figure = Figure(figsize=(7, 0.3 * len(names) + 1.5))
    axes = figure.subplots()
    colours = ["#c0392b" if name in drift.drifted else "#4c72b0" for name in names]
    axes.barh(names, [drift.indices[name] for name in names], color=colours)
    axes.axvline(drift.feature_psi, color="grey", linestyle="--", label="feature threshold")
    if drift.prediction_psi != drift.feature_psi:
        axes.axvline(drift.prediction_psi, color="black", linestyle=":", label="predictions")
    axes.set_xlabel("population stability index (PSI)")
    axes.set_title("Drift against the training reference")
    axes.legend(loc="lower right")
    figure.tight_layout()
    return figure


def report(drift: Drift, figure: Figure, source: str, model: str) -> str:
    """A self-contained HTML page: the verdict, the summary figure and the table."""
    image = io.BytesIO()
    figure.savefig(image, format="png")
    encoded = base64.b64encode(image.getvalue()).decode()
    rows = "\n".join(
        f"<tr><td>{html.escape(name)}</td><td>{value:.4f}</td><td>{drift.threshold(name):g}</td>"
        f"<td>{'drifted' if name in drift.drifted else 'stable'}</td></tr>"
        for name, value in sorted(drift.indices.items(), key=lambda item: -item[1])
    )
    verdict = f"Drifted: {', '.join(drift.drifted)}" if drift.drifted else "No drift"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Drift report</title></head><body>
<h1>Drift report</h1>
<p>Batch <code>{html.escape(source)}</code>, scored by <code>{html.escape(model)}</code>.</p>
<p><strong>{html.escape(verdict)}</strong></p>
<img alt="PSI per feature" src="data:image/png;base64,{encoded}">
<table border="1" cellpadding="4">
<tr><th>column</th><th>PSI</th><th>threshold</th><th>verdict</th></tr>
{rows}
</table></body></html>
"""
