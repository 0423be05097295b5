"""The demo project's parts, wired into the library."""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrig import (
    DataConfig,
    Evaluated,
    ModelParams,
    Producer,
    ProducerParams,
    Project,
    Report,
    Scored,
    SklearnModel,
    XGBoostModel,
    check,
    webhook_commands,
)


@dataclass
class LinearParams(ModelParams):
    C: float
    max_iter: int

    def __post_init__(self) -> None:
        check(self.C > 0, "model.C must be > 0")


class Linear(SklearnModel[LinearParams]):
    name = "linear"
    params = LinearParams

    def estimator(self, params: LinearParams, seed: int) -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        classifier = LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=seed)
        return make_pipeline(StandardScaler(), classifier)

    def importance(self, model: Any) -> Any:
        import numpy as np

        return np.abs(np.ravel(model.steps[-1][1].coef_))


@dataclass
class BoostedParams(ModelParams):
    n_estimators: int
    max_depth: int
    learning_rate: float
    min_child_weight: float
    early_stopping_rounds: int
    device: str = "cpu"

    def __post_init__(self) -> None:
        check(self.max_depth >= 1, "model.max_depth must be >= 1")


class Boosted(XGBoostModel[BoostedParams]):
    name = "boosted"
    params = BoostedParams

    def arguments(self, params: BoostedParams, seed: int) -> dict[str, Any]:
        return {
            "n_estimators": params.n_estimators,
            "max_depth": params.max_depth,
            "learning_rate": params.learning_rate,
            "min_child_weight": params.min_child_weight,
            "early_stopping_rounds": params.early_stopping_rounds or None,
            "eval_metric": ["logloss", "auc"],
            "random_state": seed,
            "tree_method": "hist",
            "device": params.device,
        }


@dataclass
class BlobsParams(ProducerParams):
    rows: int


class Blobs(Producer[BlobsParams]):
    """Two noisy Gaussian classes as a CSV, the same bytes for the same rows (tracked)."""

    name = "blobs"
    params = BlobsParams

    def produce(self, path: Path, params: BlobsParams, data: DataConfig) -> str:
        import numpy as np

        rng = np.random.default_rng(7)
        labels = rng.integers(0, 2, params.rows)
        values = rng.normal(size=(params.rows, len(data.features))) + labels[:, None] * 0.8
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow([*data.features, data.target])
            for row, label in zip(values, labels, strict=True):
                writer.writerow([*(repr(float(value)) for value in row), int(label)])
        return f"{path} written by the blobs producer: {params.rows} rows"


@dataclass
class PartitionsParams(ProducerParams):
    rows: int
    partition_rows: int
    seed: int


class Partitions(Producer[PartitionsParams]):
    """Float32 features in Parquet partitions, generated afresh (untracked)."""

    name = "partitions"
    params = PartitionsParams
    tracked = False

    def produce(self, path: Path, params: PartitionsParams, data: DataConfig) -> str:
        import numpy as np
        import pandas as pd

        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        for part, start in enumerate(range(0, params.rows, params.partition_rows)):
            rng = np.random.default_rng([params.seed, part])
            rows = min(params.partition_rows, params.rows - start)
            values = rng.standard_normal((rows, len(data.features)), dtype=np.float32)
            logit = 2 * (values[:, 0] + values[:, 1])
            label = (logit + rng.logistic(size=rows) > 0).astype(np.int8)
            frame = pd.DataFrame(values, columns=data.features).assign(**{data.target: label})
            frame.to_parquet(path / f"part-{part:05d}.parquet", index=False)
        return f"{path} generated: {params.rows} rows (seed {params.seed})"


def metrics(scored: Scored, prefix: str) -> dict[str, float]:
    from sklearn import metrics as skm

    y_pred = (scored.y_score >= 0.5).astype(int)
    values = {
        "accuracy": skm.accuracy_score(scored.y_true, y_pred),
        "f1": skm.f1_score(scored.y_true, y_pred, zero_division=0),
        "auc": skm.roc_auc_score(scored.y_true, scored.y_score),
        "logloss": skm.log_loss(scored.y_true, scored.y_score, labels=[0, 1]),
    }
    return {f"{prefix}_{name}": float(value) for name, value in values.items()}


def report(evaluated: Evaluated) -> Report:
    import pandas as pd
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(evaluated.test.y_true, evaluated.test.y_score)
    figure = Figure(figsize=(4, 4))
    figure.subplots().plot(fpr, tpr)
    return Report(
        metrics={**metrics(evaluated.valid, "valid"), **metrics(evaluated.test, "test")},
        tables={"roc": pd.DataFrame({"fpr": fpr, "tpr": tpr}), "importance": evaluated.importance},
        figures={"roc_curve": figure},
    )


PROJECT = Project(
    root=Path(__file__).resolve().parent,
    package="demo",
    models={spec.name: spec for spec in (Linear(), Boosted())},
    producers={producer.name: producer for producer in (Blobs(), Partitions())},
    metrics=metrics,
    report=report,
    commands=webhook_commands(),
)
