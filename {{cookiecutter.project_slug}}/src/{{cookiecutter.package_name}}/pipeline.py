"""The pipeline steps shared by the DVC stages and the Hydra / `mlflow run` entry point."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure

from . import data, models, plots, spool, tracking
from .config import Config, flatten
from .evaluate import (
    Evaluation,
    evaluate,
    feature_importance,
    precision_recall_points,
    roc_points,
)
{%- if cookiecutter.model_library == "xgboost" %}
from .train import check_device, train
{%- else %}
from .train import train
{%- endif %}

log = logging.getLogger(__name__)

MODEL_DIR = Path("models/model")
RUN_FILE = Path("models/run.json")
METRICS_FILE = Path("reports/metrics.json")
PLOTS_DIR = Path("reports/plots")
FIGURES_DIR = Path("reports/figures")
SAMPLE_ROWS = 100


@dataclass
class Report:
    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]


@dataclass
class Summary:
    run_id: str
    run_name: str
    metrics: dict[str, float]
    model_name: str
    version: str | None  # None: the run is spooled until `sync`
    alias: str
    url: str | None
    spooled: Path | None = None

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(self.metrics.items()) if "test" in k)
        model = f"models:/{self.model_name}/{self.version} (alias @{self.alias})"
        lines = [
            f"Run:     {self.run_name} ({self.run_id})",
            f"Metrics: {shown}",
            f"Model:   {model if self.version else 'registers when the spooled run is synced'}",
        ]
        if self.url:
            local = self.url.startswith(tracking.LOCAL_UI)
            lines.append(f"UI:      {self.url}{' (after `make ui`)' if local else ''}")
        if self.spooled:
            lines.append(f"Spooled: {self.spooled} (tracking server unreachable): run `make sync`")
        return "\n".join(lines)


def fit_and_log(cfg: Config, splits: Any, run: spool.RunLogger) -> tuple[Any, str | None]:
    """Train and log config, lineage, per-iteration metrics and the model; return model, URI."""
    run.tags(tracking.lineage_tags(cfg))
    run.params(flatten(cfg.raw))
    run.dataset(tracking.dataset(cfg, splits.train, "training"), "training")
    run.dataset(tracking.dataset(cfg, splits.valid, "validation"), "validation")
    result = train(cfg, splits)
    points = spool.history_points(result.history)
    run.metrics_in_background(points)  # overlaps with logging the model
    log.info("Trained %s; %d per-iteration metric points in one batch", cfg.model.kind, len(points))
    if result.best_iteration is not None:
        run.metrics(spool.metric_points({"best_iteration": result.best_iteration}))
    return result.model, run.model(result.model, cfg.model.kind, sample(cfg, splits))


def sample(cfg: Config, splits: Any) -> pd.DataFrame:
    """A few training rows' features (pandas, on either path): signature and input example."""
    return splits.train[cfg.data.features].head(SAMPLE_ROWS)


@contextmanager
def computing(cfg: Config) -> Iterator[None]:
{%- if cookiecutter.model_library == "xgboost" %}
    """With `compute=dask`, a cluster client for the job (the default client)."""
    if cfg.compute.kind != "dask":
        yield
        return
    from . import compute

    with compute.cluster(cfg.compute):
        yield
{%- else %}
    """Where the job computes: in this process (the only compute kind here)."""
    yield
{%- endif %}


def _log_sizes(splits: data.Splits) -> data.Splits:
    """Say how big each in-memory split is."""
    sizes = ", ".join(f"{name} {len(getattr(splits, name))}" for name in data.SPLITS)
    log.info("data: %s rows", sizes)
    return splits


def load_splits(cfg: Config) -> Any:
{%- if cookiecutter.model_library == "xgboost" %}
    """Raw data -> checked splits: pandas, or lazy Dask frames with `compute=dask`."""
    if cfg.compute.kind == "dask":
        from . import compute

        return compute.split(compute.read_raw(cfg.data, cfg.compute), cfg.data, cfg.seed)
{%- else %}
    """Raw data -> checked splits (pandas)."""
{%- endif %}
    log.info("data: loading %s", cfg.data.raw_path)
    return _log_sizes(data.load_splits(cfg.data, cfg.seed))


def read_splits(cfg: Config) -> Any:
    """The prepare stage's splits."""
{%- if cookiecutter.model_library == "xgboost" %}
    if cfg.compute.kind == "dask":
        from . import compute

        return compute.read_splits(cfg.data)
{%- endif %}
    return _log_sizes(data.read_splits(cfg.data))


def _evaluate(cfg: Config, model: Any, frame: Any, prefix: str) -> Evaluation:
{%- if cookiecutter.model_library == "xgboost" %}
    if cfg.compute.kind == "dask":
        from . import compute

        return compute.evaluate(model, frame, cfg.data, prefix)
{%- endif %}
    return evaluate(model, *data.features_and_target(frame, cfg.data), prefix)


def report(cfg: Config, model: Any, splits: Any) -> Report:
    """Held-out metrics (valid and test), plot tables and figures."""
    test = _evaluate(cfg, model, splits.test, "test")
    valid = _evaluate(cfg, model, splits.valid, "valid")
    roc = roc_points(test)
    precision_recall = precision_recall_points(test)
    importance = feature_importance(model, cfg.data.features)
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


def write_report(result: Report) -> None:
    """The DVC metrics and plots files."""
    METRICS_FILE.parent.mkdir(parents=True, exist_ok=True)
    METRICS_FILE.write_text(json.dumps(result.metrics, indent=2, sort_keys=True) + "\n")
    PLOTS_DIR.mkdir(parents=True, exist_ok=True)
    for name, table in result.tables.items():
        table.to_csv(PLOTS_DIR / f"{name}.csv", index=False)
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    for name, figure in result.figures.items():
        figure.savefig(FIGURES_DIR / f"{name}.png", dpi=100, bbox_inches="tight")


def log_report_and_register(
    cfg: Config, result: Report, model_uri: str | None, run: spool.RunLogger
) -> Summary:
    """Log metrics and plots to the run, then register the model (the last step)."""
    run.metrics(spool.metric_points(result.metrics))
    for name, figure in result.figures.items():
        run.figure(figure, f"plots/{name}.png")
    for name, table in result.tables.items():
        run.table(table, f"plots/{name}.json")
    version = run.register(model_uri, cfg.registry.model_name, cfg.registry.alias)
    finished = None if run.offline else mlflow.get_run(run.run_id)
    return Summary(
        run_id=run.run_id,
        run_name=finished.info.run_name if finished else run.run_name,
        metrics=result.metrics,
        model_name=cfg.registry.model_name,
        version=version,
        alias=cfg.registry.alias,
        url=tracking.run_url(finished) if finished else None,
        spooled=run.folder if run.offline else None,
    )


def run_job(cfg: Config) -> Summary:
    """The whole pipeline in one MLflow run (Hydra entry, `mlflow run`, sweeps)."""
{%- if cookiecutter.model_library == "xgboost" %}
    check_device(cfg)
{%- endif %}
    uri = tracking.connect(cfg)
    with computing(cfg):
        return _run_job(cfg, uri, load_splits(cfg))


def _run_job(cfg: Config, uri: str, splits: Any) -> Summary:
    with spool.start_run(cfg, uri) as run:
        model, model_uri = fit_and_log(cfg, splits, run)
        return log_report_and_register(cfg, report(cfg, model, splits), model_uri, run)


def stage_prepare(cfg: Config) -> None:
    with computing(cfg):
        splits = load_splits(cfg)
{%- if cookiecutter.model_library == "xgboost" %}
        if cfg.compute.kind == "dask":
            from . import compute

            compute.write_splits(splits, cfg.data.processed_dir)
            return
{%- endif %}
        data.write_splits(splits, cfg.data.processed_dir)


def stage_train(cfg: Config) -> None:
    """DVC train stage: one new run; the model directory and run id are the stage outputs."""
{%- if cookiecutter.model_library == "xgboost" %}
    check_device(cfg)
{%- endif %}
    uri = tracking.connect(cfg)
    with computing(cfg), spool.start_run(cfg, uri) as run:
        splits = read_splits(cfg)
        model, model_uri = fit_and_log(cfg, splits, run)
        models.save(model, cfg.model.kind, MODEL_DIR, sample(cfg, splits))
        produced = {"run_id": run.run_id, "run_name": run.run_name, "model_uri": model_uri}
        RUN_FILE.write_text(json.dumps(produced, indent=2) + "\n")


def stage_evaluate(cfg: Config) -> Summary:
    """DVC evaluate stage: metrics and plots for the train stage's run, then registration."""
    if not RUN_FILE.exists():
        raise FileNotFoundError(f"{RUN_FILE} is missing: run `dvc repro train` first.")
    produced = json.loads(RUN_FILE.read_text())
    model = models.load(cfg.model.kind, MODEL_DIR)
    with computing(cfg):
        result = report(cfg, model, read_splits(cfg))
    write_report(result)
    with spool.resume_run(cfg, produced["run_id"], produced["run_name"]) as run:
        return log_report_and_register(cfg, result, produced["model_uri"], run)
