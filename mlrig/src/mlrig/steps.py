"""The steps of a training run: resolve the model kind and backend, fit and log, evaluate,
then log the report and register -- all in one MLflow run. The DVC train stage
(`mlrig.stages`) and the tracked job (`mlrig.job`: `train`, `mlflow run`, sweeps) both run
`train_and_register`: the stage on the prepared splits, writing its DVC outputs; the job on
the raw data, split in its own process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import report
from .backends import Backend, Splits, backend_for
from .config import Config, flatten
from .models.base import ModelSpec
from .monitoring import profile
from .report import Evaluated, Report
from .tracking.delivery import history_points, metric_points
from .tracking.lineage import DATASET_HEAD_ROWS, dataset, lineage_tags
from .tracking.run import RunLogger, start_run
from .tracking.store import LOCAL_UI, Tracking

if TYPE_CHECKING:
    from mlflow.entities import Dataset

    from .project import Project

MODEL_DIR = Path("models/model")  # the DVC train stage's model output
MODEL_UUID_TAG = "dvc.model_uuid"  # the run that wrote MODEL_DIR: its content digest
REFERENCE_ROWS = 200_000  # training rows sampled for the monitoring profile
# The split each metric's prefix was measured on, and the dataset context it is logged under.
CONTEXTS = {"train_": "training", "valid_": "validation", "test_": "testing"}

log = logging.getLogger(__name__)


@dataclass
class Summary:
    run_id: str
    run_name: str
    metrics: dict[str, float]
    model_name: str
    version: str | None  # None: the run is spooled until `sync`, or not registered
    alias: str
    url: str | None
    spooled: Path | None = None
    registered: bool = True  # False: a tuning trial (its study registers the best trial)

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(self.metrics.items()) if "test" in k)
        model = f"models:/{self.model_name}/{self.version} (alias @{self.alias})"
        if not self.registered:
            model = "logged, not registered (a tuning trial: the study registers its best)"
        elif not self.version:
            model = "registers when the spooled run is synced"
        lines = [
            f"Run:     {self.run_name} ({self.run_id})",
            f"Metrics: {shown}",
            f"Model:   {model}",
        ]
        if self.url:
            local = self.url.startswith(LOCAL_UI)
            lines.append(f"UI:      {self.url}{' (after `make ui`)' if local else ''}")
        if self.spooled:
            lines.append(f"Spooled: {self.spooled} (tracking server unreachable): run `make sync`")
        return "\n".join(lines)


def resolve(project: Project, cfg: Config) -> tuple[ModelSpec[Any], Backend[Any]]:
    """The model kind's spec and the compute backend, after checks that need no run."""
    spec = project.spec(cfg.model)
    spec.check(cfg.model)
    return spec, backend_for(project, cfg)


def train_and_register(
    project: Project, cfg: Config, prepared: bool = False, register: bool = True
) -> Summary:
    """One run: fit and log, evaluate, register (unless not `register`: a tuning trial).
    `prepared`: the DVC train stage, which reads the prepare stage's splits and writes the
    model (MODEL_DIR) and the report (`reports/`); else the raw data is read and split here
    (checked before any run starts)."""
    spec, backend = resolve(project, cfg)
    tracking = Tracking.connect(cfg, project.root)
    with backend.session():
        splits = backend.read_splits() if prepared else backend.load_splits()
        with start_run(project, tracking, spec.name) as run:
            model, model_uri, datasets = fit_and_log(cfg, backend, spec, splits, run)
            evaluated = evaluate(backend, spec, model, splits)
            result = project.report(evaluated)
            reference = backend.reference(splits.train, REFERENCE_ROWS)
            derived = profile.derive(
                reference, cfg.data.features, evaluated.test.y_score, cfg.monitor
            )
            run.text(derived.to_json(), profile.PROFILE)
            if prepared:
                run.tags({MODEL_UUID_TAG: spec.save(model, MODEL_DIR, backend.sample(splits))})
                report.write(result)
            return publish(tracking, cfg, result, model_uri, run, datasets, register)


def fit_and_log(
    cfg: Config, backend: Backend[Any], spec: ModelSpec[Any], splits: Splits[Any], run: RunLogger
) -> tuple[Any, str | None, dict[str, Dataset]]:
    """Train and log config, lineage, the splits as datasets, per-iteration metrics and the
    model; return the model, its URI (None when the run is spooled) and the datasets by the
    prefix of the metrics measured on them (CONTEXTS)."""
    run.tags({**lineage_tags(cfg), "model.kind": spec.name})
    run.params(flatten(cfg.raw))
    datasets = {}
    frames = {"train_": splits.train, "valid_": splits.valid, "test_": splits.test}
    for prefix, context in CONTEXTS.items():
        head, rows = backend.describe(frames[prefix], DATASET_HEAD_ROWS)
        datasets[prefix] = dataset(cfg, head, rows, context)
        run.dataset(datasets[prefix], context)
    result = backend.train(spec, cfg.model, splits)
    points = history_points(result.history)
    run.metrics_in_background(points)  # overlaps with logging the model
    log.info("Trained %s; %d per-iteration metric points in one batch", spec.name, len(points))
    if result.best_iteration is not None:
        run.metrics(metric_points({"best_iteration": result.best_iteration}))
    return result.model, run.model(spec, result.model, backend.sample(splits)), datasets


def evaluate(
    backend: Backend[Any], spec: ModelSpec[Any], model: Any, splits: Splits[Any]
) -> Evaluated:
    """What the project's report is made of: the test and valid splits scored, the importance
    of each feature."""
    importance = report.importance(backend.data.features, spec.importance(model))
    test = backend.predict(spec, model, splits.test)
    valid = backend.predict(spec, model, splits.valid)
    return Evaluated(test, valid, importance)


def publish(
    tracking: Tracking,
    cfg: Config,
    result: Report,
    model_uri: str | None,
    run: RunLogger,
    datasets: dict[str, Dataset],
    register: bool = True,
) -> Summary:
    """Log metrics (the logged model's too, each linked to its split's dataset) and plots to
    the run, then register the model (the last step), when `register`."""
    run.model_metrics(metric_points(result.metrics), datasets)
    for name, figure in result.figures.items():
        run.figure(figure, f"plots/{name}.png")
    for name, table in result.tables.items():
        run.table(table, f"plots/{name}.json")
    name, alias = cfg.registry.model_name, cfg.registry.alias
    version = run.register(model_uri, name, alias) if register else None
    finished = None if run.offline else tracking.client.get_run(run.run_id)
    return Summary(
        run_id=run.run_id,
        run_name=finished.info.run_name if finished else run.run_name,
        metrics=result.metrics,
        model_name=cfg.registry.model_name,
        version=version,
        alias=cfg.registry.alias,
        url=tracking.run_url(finished) if finished else None,
        spooled=run.spool if run.offline else None,
        registered=register,
    )
