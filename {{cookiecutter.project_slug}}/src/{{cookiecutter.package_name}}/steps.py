"""The steps every tracked entry point is built from: resolve the model kind and backend, fit
and log, then log the report and register. The DVC stages (stages/) and the tracked job
(job.py) are these steps in their own order."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow

from . import models
from .backends import Backend, Splits, backend_for
from .config import Config, flatten
from .models.base import ModelSpec
from .report import Report
from .tracking.delivery import history_points, metric_points
from .tracking.lineage import DATASET_HEAD_ROWS, dataset, lineage_tags
from .tracking.run import RunLogger
from .tracking.store import LOCAL_UI, run_url

log = logging.getLogger(__name__)


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
            local = self.url.startswith(LOCAL_UI)
            lines.append(f"UI:      {self.url}{' (after `make ui`)' if local else ''}")
        if self.spooled:
            lines.append(f"Spooled: {self.spooled} (tracking server unreachable): run `make sync`")
        return "\n".join(lines)


def resolve(cfg: Config) -> tuple[ModelSpec[Any], Backend[Any]]:
    """The model kind's spec and the compute backend, after checks that need no run."""
    spec = models.spec(cfg.model)
    spec.check(cfg.model)
    return spec, backend_for(cfg)


def fit_and_log(
    cfg: Config, backend: Backend[Any], spec: ModelSpec[Any], splits: Splits[Any], run: RunLogger
) -> tuple[Any, str | None]:
    """Train and log config, lineage, per-iteration metrics and the model; return the model
    and its URI (None when the run is spooled)."""
    run.tags({**lineage_tags(cfg), "model.kind": spec.name})
    run.params(flatten(cfg.raw))
    for context, frame in (("training", splits.train), ("validation", splits.valid)):
        head, rows = backend.describe(frame, DATASET_HEAD_ROWS)
        run.dataset(dataset(cfg, head, rows, context), context)
    result = backend.train(spec, cfg.model, splits)
    points = history_points(result.history)
    run.metrics_in_background(points)  # overlaps with logging the model
    log.info("Trained %s; %d per-iteration metric points in one batch", spec.name, len(points))
    if result.best_iteration is not None:
        run.metrics(metric_points({"best_iteration": result.best_iteration}))
    return result.model, run.model(spec, result.model, backend.sample(splits))


def publish(cfg: Config, result: Report, model_uri: str | None, run: RunLogger) -> Summary:
    """Log metrics and plots to the run, then register the model (the last step)."""
    run.metrics(metric_points(result.metrics))
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
        url=run_url(finished) if finished else None,
        spooled=run.spool if run.offline else None,
    )
