"""One run's logging calls, delivered through the journal's table as they happen; when the
tracking server stops answering mid-run, the job goes on and every later call is journaled
under `<spool_dir>/<run_id>/` for `sync` to replay into the same run."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Dataset, Metric

from ..config import Config
from ..models.base import ModelSpec
from . import journal
from .delivery import end_active_run, no_retries, unreachable
from .journal import Delivery
from .store import (
    TrackingError,
    check_attached,
    connect,
    ensure_experiment,
    next_run_name,
    resolve_uri,
)

log = logging.getLogger(__name__)

PARENT_RUN_ENV = "SWEEP_PARENT_RUN_ID"  # set by a sweep: its jobs' runs nest under it


@dataclass
class RunLogger:
    """The logging calls of one run: delivered, or journaled once the server has gone away."""

    run_id: str
    run_name: str
    uri: str
    spool: Path  # <spool_dir>/<run_id>: the journal, when there is one
    offline: bool
    delivery: Delivery = field(init=False)
    # Calls sent in the background and not yet settled: (future, their entry).
    _pending: list[tuple[Future[None], dict[str, Any]]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        staging = self.spool if self.offline else Path(tempfile.mkdtemp(prefix="mlflow-run-"))
        self.delivery = Delivery(self.run_id, staging)

    @classmethod
    def open(cls, cfg: Config, run_id: str, run_name: str, uri: str) -> RunLogger:
        """A logger for `run_id`; offline from the start when the run is already spooled."""
        spool = journal.spool_root(cfg) / run_id
        return cls(run_id, run_name, uri, spool, offline=(spool / journal.JOURNAL).exists())

    def _call(self, name: str, *objects: Any) -> None:
        entry = journal.write(name, self.delivery.folder, *objects)
        if not self.offline:
            try:
                journal.deliver(self.delivery, entry)
                return
            except Exception as error:
                if not unreachable(error):
                    raise
                self.go_offline(error)
        journal.append(self.spool, entry)

    def go_offline(self, error: BaseException) -> None:
        """Journal from now on: the header first, then the staged files move to the spool."""
        self.offline = True
        header = journal.write("run", self.spool, self.run_id, self.uri, str(error))
        journal.append(self.spool, header)
        shutil.copytree(self.delivery.folder, self.spool, dirs_exist_ok=True)
        shutil.rmtree(self.delivery.folder, ignore_errors=True)
        self.delivery.folder = self.spool
        log.warning(
            "The tracking server %s stopped answering; the run goes on and is spooled in %s. "
            "Run `make sync` when the server is back.",
            self.uri,
            self.spool,
        )

    def tags(self, tags: dict[str, str]) -> None:
        self._call("tags", tags)

    def params(self, params: dict[str, str]) -> None:
        self._call("params", params)

    def metrics(self, metrics: list[Metric]) -> None:
        self._call("metrics", metrics)

    def metrics_in_background(self, metrics: list[Metric]) -> None:
        """Send metrics on a background thread while the job goes on (the per-iteration
        history while the model is logged); settled, or journaled, before the run ends."""
        if self.offline:
            self.metrics(metrics)
            return
        entry = journal.write("metrics", self.delivery.folder, metrics)
        sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-metrics")
        self._pending.append((sender.submit(journal.deliver, self.delivery, entry), entry))
        sender.shutdown(wait=False)

    def _settle(self) -> None:
        """Wait for background calls; journal those the server did not take."""
        while self._pending:
            future, entry = self._pending.pop(0)
            try:
                future.result()
            except Exception as error:
                if not unreachable(error):
                    raise
                if not self.offline:
                    self.go_offline(error)
                journal.append(self.spool, entry)

    def dataset(self, dataset: Dataset, context: str) -> None:
        self._call("dataset", dataset, context)

    def figure(self, figure: Figure, artifact_file: str) -> None:
        self._call("figure", figure, artifact_file)

    def table(self, table: pd.DataFrame, artifact_file: str) -> None:
        self._call("table", table, artifact_file)

    def model(self, spec: ModelSpec[Any], model: Any, sample: pd.DataFrame) -> str | None:
        """Log the model with signature and input example; its URI (None when spooled)."""
        self._call("model", spec, model, sample)
        return None if self.offline else self.delivery.model_uri

    def register(self, model_uri: str | None, name: str, alias: str) -> str | None:
        """Register the run's model (`model_uri`: from an earlier stage, else what `model`
        logged); the new version, or None when the registration was spooled."""
        self._call("register", model_uri, name, alias)
        return None if self.offline else self.delivery.version

    def end(self, status: str) -> None:
        """End the active run (or record its end in the journal)."""
        self._settle()
        if self.offline:
            with no_retries():  # only pops the run: the server is known to be gone
                end_active_run(status)
        self._call("end", status)
        if not self.offline:
            shutil.rmtree(self.delivery.folder, ignore_errors=True)


@contextmanager
def start_run(cfg: Config, uri: str, label: str) -> Iterator[RunLogger]:
    """One run per job: attach to the run `mlflow run` created, or start one named
    `<project>-<label>-<n>`."""
    attached = os.environ.get("MLFLOW_RUN_ID")
    if attached:
        check_attached(cfg, attached, uri)
        experiment_id = MlflowClient().get_run(attached).info.experiment_id
        run_name = next_run_name(cfg, experiment_id, label)
        run = mlflow.start_run(run_id=attached)
        mlflow.set_tag("mlflow.runName", run_name)
    else:
        experiment_id = ensure_experiment(cfg, uri)
        mlflow.set_experiment(experiment_id=experiment_id)
        run_name = next_run_name(cfg, experiment_id, label)
        parent = os.environ.get(PARENT_RUN_ENV)
        run = mlflow.start_run(run_name=run_name, parent_run_id=parent)
    with _ending(RunLogger.open(cfg, run.info.run_id, run_name, uri)) as logger:
        yield logger


@contextmanager
def resume_run(cfg: Config, run_id: str, run_name: str) -> Iterator[RunLogger]:
    """Re-open a run a previous stage started (the DVC evaluate stage).

    When that stage spooled the run, this one appends to the journal without the server.
    """
    uri = resolve_uri(cfg)[0]
    logger = RunLogger.open(cfg, run_id, run_name, uri)
    if not logger.offline:
        try:
            connect(cfg)
        except TrackingError as error:  # gone since the previous stage: spool
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
