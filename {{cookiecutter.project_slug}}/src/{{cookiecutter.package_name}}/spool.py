"""Runs that outlive their tracking server.

Every logging call of a job goes through a `RunLogger`. It sends each call to the tracking
store; when the store becomes unreachable mid-run, the job goes on and the logger records that
call and all later ones (files included) in a journal under `<spool_dir>/<run_id>/`. `sync`
replays the journal into the same run once the server is back, so the run ends up complete:
params, tags, metrics, datasets, plots, the model and its registration.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import requests
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from . import models, registry, tracking
from .config import PROJECT_ROOT, Config

log = logging.getLogger(__name__)

JOURNAL = "journal.jsonl"
PROGRESS = "replayed.json"  # what an interrupted `sync` already delivered
PARAM_BATCH = 100  # MLflow's limit of params per log_batch request
DATASET_ATTEMPTS = 3
PARENT_RUN_ENV = "SWEEP_PARENT_RUN_ID"
# The store inserts a new dataset after checking it is absent, so concurrent runs logging the
# same dataset can collide on its key; the failed call is rolled back and a retry links the
# dataset the other run created.
DATASET_KEY_CONFLICT = re.compile(r"unique constraint|UniqueViolation|IntegrityError", re.I)


class SyncError(RuntimeError):
    """A spooled run cannot be replayed; the message says why and what to do."""


def unreachable(error: BaseException) -> bool:
    """True when `error` means the server did not answer (after MLflow's own retries)."""
    if isinstance(error, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    return isinstance(error, MlflowException) and "failed with exception" in error.message


def spool_root(cfg: Config) -> Path:
    return PROJECT_ROOT / cfg.tracking.spool_dir


@dataclass
class RunLogger:
    """One run's logging calls: delivered, or journaled once the server has gone away."""

    run_id: str
    run_name: str
    folder: Path
    uri: str
    offline: bool = False
    # Metrics sent in the background and not yet settled: (future, the metrics).
    _pending: list[tuple[Future[Any], list[Metric]]] = field(
        default_factory=list, init=False, repr=False
    )

    @classmethod
    def open(cls, cfg: Config, run_id: str, run_name: str, uri: str) -> RunLogger:
        """A logger for `run_id`; offline from the start when the run is already spooled."""
        folder = spool_root(cfg) / run_id
        return cls(run_id, run_name, folder, uri, offline=(folder / JOURNAL).exists())

    # Each call: the journal entry, how to deliver it now, and the files it needs offline.
    def _log(
        self,
        entry: dict[str, Any],
        deliver: Callable[[], Any],
        save_files: Callable[[], None] | None = None,
    ) -> Any:
        if not self.offline:
            try:
                return deliver()
            except Exception as error:
                if not unreachable(error):
                    raise
                self.go_offline(error)
        if save_files:
            save_files()
        self._journal(entry)
        return None

    def _journal(self, entry: dict[str, Any]) -> None:
        with (self.folder / JOURNAL).open("a") as journal:
            journal.write(json.dumps(entry) + "\n")

    def go_offline(self, error: BaseException) -> None:
        self.offline = True
        self.folder.mkdir(parents=True, exist_ok=True)
        self._journal({"op": "run", "run_id": self.run_id, "uri": self.uri, "reason": str(error)})
        log.warning(
            "The tracking server %s stopped answering; the run goes on and is spooled in %s. "
            "Run `make sync` when the server is back.",
            self.uri,
            self.folder,
        )

    def tags(self, tags: dict[str, str]) -> None:
        self._log({"op": "tags", "tags": tags}, lambda: deliver_tags(self.run_id, tags))

    def params(self, params: dict[str, str]) -> None:
        self._log({"op": "params", "params": params}, lambda: deliver_params(self.run_id, params))

    def metrics(self, metrics: list[Metric]) -> None:
        points = [[m.key, m.value, m.timestamp, m.step] for m in metrics]
        self._log(
            {"op": "metrics", "points": points}, lambda: deliver_metrics(self.run_id, metrics)
        )

    def metrics_in_background(self, metrics: list[Metric]) -> None:
        """Send metrics on a background thread while the job goes on (the per-iteration
        history while the model is logged); they are settled, or spooled, before the run ends."""
        if self.offline:
            self.metrics(metrics)
            return
        sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-metrics")
        self._pending.append((sender.submit(deliver_metrics, self.run_id, metrics), metrics))
        sender.shutdown(wait=False)

    def _settle(self) -> None:
        """Wait for background calls; journal those the server did not take."""
        while self._pending:
            future, metrics = self._pending.pop(0)
            try:
                future.result()
            except Exception as error:
                if not unreachable(error):
                    raise
                if not self.offline:
                    self.go_offline(error)
                self.metrics(metrics)  # offline now: journaled

    def dataset(self, dataset: Dataset, context: str) -> None:
        entry = {"op": "dataset", "dataset": dataset.to_dictionary(), "context": context}
        self._log(entry, lambda: deliver_dataset(self.run_id, dataset, context))

    def figure(self, figure: Figure, artifact_file: str) -> None:
        path = self.folder / "artifacts" / artifact_file
        self._log(
            {"op": "artifact", "file": artifact_file},
            lambda: MlflowClient().log_figure(self.run_id, figure, artifact_file),
            lambda: _save_figure(figure, path),
        )

    def table(self, table: pd.DataFrame, artifact_file: str) -> None:
        path = self.folder / "tables" / artifact_file
        self._log(
            {"op": "table", "file": artifact_file},
            lambda: MlflowClient().log_table(self.run_id, table, artifact_file),
            lambda: _save_table(table, path),
        )

    def model(self, model: Any, kind: str, features: pd.DataFrame) -> str | None:
        """Log the model to the active run; its URI, or None when it was spooled."""
        folder = self.folder / "model"
        info = self._log(
            {"op": "model", "kind": kind},
            lambda: models.log(model, kind, features),
            lambda: models.save(model, kind, folder, features),
        )
        return info.model_uri if info else None

    def register(self, model_uri: str | None, name: str, alias: str) -> str | None:
        """Register the model; the new version, or None when registration was spooled."""
        entry = {"op": "register", "model_uri": model_uri, "name": name, "alias": alias}
        if model_uri is None:  # the model itself is spooled: it registers after `sync`
            self._journal(entry)
            return None
        version = self._log(entry, lambda: registry.register(model_uri, name, alias, self.run_id))
        return str(version.version) if version else None

    def end(self, status: str) -> None:
        """End the active run (or record its end in the journal)."""
        self._settle()
        if self.offline:
            with _no_retries():  # only pops the run: the server is known to be gone
                _end_active_run(status)
        self._log({"op": "end", "status": status}, lambda: mlflow.end_run(status))


def _save_figure(figure: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def _save_table(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_json(path, orient="split", index=False)


@contextmanager
def _no_retries() -> Iterator[None]:
    previous = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        else:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = previous


def _end_active_run(status: str) -> None:
    """mlflow.end_run pops the active run before it calls the server."""
    try:
        mlflow.end_run(status)
    except Exception as error:
        if not unreachable(error):
            raise


def deliver_tags(run_id: str, tags: dict[str, str]) -> None:
    MlflowClient().log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def deliver_params(run_id: str, flat: dict[str, str]) -> None:
    """Log params in batches of 100, skipping those already on the run.

    `mlflow run` logs its -P parameters itself; MLflow refuses to change a logged value.
    """
    client = MlflowClient()
    existing = client.get_run(run_id).data.params
    params = [Param(k, v[:6000]) for k, v in flat.items() if k not in existing]
    for start in range(0, len(params), PARAM_BATCH):
        client.log_batch(run_id, params=params[start : start + PARAM_BATCH])


def deliver_metrics(run_id: str, metrics: list[Metric]) -> None:
    """One log_batch call (the client sends 1000 points per request; the server skips exact
    duplicates, so a replayed batch that had arrived adds nothing)."""
    MlflowClient().log_batch(run_id, metrics=metrics)


def deliver_dataset(run_id: str, dataset: Dataset, context: str) -> None:
    inputs = [DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])]
    for attempt in range(1, DATASET_ATTEMPTS + 1):
        try:
            MlflowClient().log_inputs(run_id, datasets=inputs)
            return
        except MlflowException as error:
            if attempt == DATASET_ATTEMPTS or not DATASET_KEY_CONFLICT.search(error.message):
                raise
            log.info("dataset %s was created concurrently; linking it", dataset.name)
            time.sleep(0.2 * attempt)


def history_points(history: dict[str, list[float]]) -> list[Metric]:
    """Per-iteration values as metric points, step = iteration."""
    now = int(time.time() * 1000)
    return [
        Metric(key=name, value=value, timestamp=now, step=step)
        for name, values in history.items()
        for step, value in enumerate(values)
    ]


def metric_points(values: dict[str, float]) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(key=k, value=float(v), timestamp=now, step=0) for k, v in values.items()]


@contextmanager
def start_run(cfg: Config, uri: str) -> Iterator[RunLogger]:
    """One run per job: attach to the run `mlflow run` created, or start a named one."""
    attached = os.environ.get("MLFLOW_RUN_ID")
    if attached:
        tracking.check_attached(cfg, attached, uri)
        experiment_id = MlflowClient().get_run(attached).info.experiment_id
        run_name = tracking.next_run_name(cfg, experiment_id)
        run = mlflow.start_run(run_id=attached)
        mlflow.set_tag("mlflow.runName", run_name)
    else:
        experiment_id = tracking.ensure_experiment(cfg, uri)
        mlflow.set_experiment(experiment_id=experiment_id)
        run_name = tracking.next_run_name(cfg, experiment_id)
        parent = os.environ.get(PARENT_RUN_ENV)  # set by a sweep (sweep.SweepParent)
        run = mlflow.start_run(run_name=run_name, parent_run_id=parent)
    with _ending(RunLogger.open(cfg, run.info.run_id, run_name, uri)) as logger:
        yield logger


@contextmanager
def resume_run(cfg: Config, run_id: str, run_name: str) -> Iterator[RunLogger]:
    """Re-open a run a previous stage started (the DVC evaluate stage).

    When that stage spooled the run, this one appends to the journal without the server.
    """
    uri = tracking.resolve_uri(cfg)[0]
    logger = RunLogger.open(cfg, run_id, run_name, uri)
    if not logger.offline:
        try:
            tracking.connect(cfg)
        except tracking.TrackingError as error:  # gone since the previous stage: spool
            logger.go_offline(error)
        else:
            mlflow.start_run(run_id=run_id)
    with _ending(logger):
        yield logger


@contextmanager
def _ending(logger: RunLogger) -> Iterator[RunLogger]:
    status = "FAILED"
    try:
        yield logger
        status = "FINISHED"
    finally:
        logger.end(status)


def pending(cfg: Config) -> list[Path]:
    """Spooled runs, oldest first."""
    root = spool_root(cfg)
    folders = [p for p in root.iterdir() if (p / JOURNAL).exists()] if root.is_dir() else []
    return sorted(folders, key=lambda p: (p / JOURNAL).stat().st_mtime)


def sync(cfg: Config) -> list[str]:
    """Replay every finished spooled run into the tracking server; one line per run."""
    uri = tracking.connect(cfg)
    return [replay(folder, uri) for folder in pending(cfg)]


def replay(folder: Path, uri: str) -> str:
    """Deliver one journal into its run, resuming where an interrupted `sync` stopped."""
    entries = [json.loads(line) for line in (folder / JOURNAL).read_text().splitlines()]
    run_id = entries[0]["run_id"]
    if entries[-1]["op"] != "end":
        return f"{run_id}: still running or killed before it ended; left in {folder}"
    if entries[0]["uri"] != uri:
        raise SyncError(
            f"{folder} was spooled for {entries[0]['uri']}, not {uri}: "
            f"set MLFLOW_TRACKING_URI={entries[0]['uri']} and sync again"
        )
    try:
        MlflowClient().get_run(run_id)
    except MlflowException as error:
        raise SyncError(f"run {run_id} is not on {uri}: {error.message}") from error
    progress_file = folder / PROGRESS
    progress = json.loads(progress_file.read_text()) if progress_file.exists() else {"done": 0}
    version = None
    mlflow.start_run(run_id=run_id)
    try:
        for index, entry in enumerate(entries[progress["done"] :], start=progress["done"]):
            if entry["op"] == "model":
                spooled = folder / "model"
                example = Model.load(spooled).load_input_example(spooled)
                model = models.load(entry["kind"], spooled)
                progress["model_uri"] = models.log(model, entry["kind"], example).model_uri
            elif entry["op"] != "end":
                version = _replay(folder, run_id, entry, progress.get("model_uri")) or version
            progress["done"] = index + 1
            progress_file.write_text(json.dumps(progress))
    except BaseException:
        _end_active_run("FAILED")  # the next `sync` resumes after the last delivered entry
        raise
    mlflow.end_run(entries[-1]["status"])
    shutil.rmtree(folder)
    registered = f", registered as version {version}" if version else ""
    return f"{run_id}: replayed {len(entries) - 1} logging calls into {uri}{registered}"


def _replay(folder: Path, run_id: str, entry: dict[str, Any], model_uri: str | None) -> str | None:
    client = MlflowClient()
    op = entry["op"]
    if op == "tags":
        deliver_tags(run_id, entry["tags"])
    elif op == "params":
        deliver_params(run_id, entry["params"])
    elif op == "metrics":
        deliver_metrics(run_id, [Metric(*point) for point in entry["points"]])
    elif op == "dataset":
        deliver_dataset(run_id, Dataset(**entry["dataset"]), entry["context"])
    elif op == "artifact":
        path = folder / "artifacts" / entry["file"]
        client.log_artifact(run_id, str(path), str(Path(entry["file"]).parent))
    elif op == "table":
        table = pd.read_json(folder / "tables" / entry["file"], orient="split")
        client.log_table(run_id, table, entry["file"])
    elif op == "register":
        uri = entry["model_uri"] or model_uri
        return str(registry.register(uri, entry["name"], entry["alias"], run_id).version)
    return None
