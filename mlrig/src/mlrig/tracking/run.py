"""One run's logging calls, delivered through the journal's table as they happen; when the
tracking server stops answering mid-run, the job goes on and every later call is journaled
under `<spool_dir>/<run_id>/` for `sync` to replay into the same run."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Dataset, Metric

from ..models.base import ModelSpec
from . import journal
from .delivery import end_active_run, no_retries, unreachable
from .journal import Delivery
from .store import Tracking, TrackingError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..project import Project

log = logging.getLogger(__name__)

# The run a sweep's jobs nest under (sweep.py, tune.py set it for the jobs they run).
_parent: list[str] = []
# The process logging a run (set when a stage or job opens it): a RUNNING run whose process is
# gone is stale at once; one from another machine, after tracking.retention.stale_running_hours.
HOST_TAG, PID_TAG = "process.host", "process.pid"
HOUR_MS = 3_600_000


def process_tags() -> dict[str, str]:
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def stale_running_runs(
    client: MlflowClient, experiment_id: str, hours: float
) -> list[tuple[mlflow.entities.Run, str]]:
    """RUNNING runs nobody will end, each with the reason: its process on this machine is
    gone, or (elsewhere, or untagged) it started more than `hours` ago."""
    cutoff = time.time() * 1000 - hours * HOUR_MS
    stale = []
    for run in search_all(client, experiment_id, "attributes.status = 'RUNNING'"):
        host, pid = run.data.tags.get(HOST_TAG), run.data.tags.get(PID_TAG)
        if host == socket.gethostname() and pid and pid.isdigit():
            if not _alive(int(pid)):
                stale.append((run, f"its process {pid} on this machine is gone"))
        elif run.info.start_time < cutoff:
            stale.append((run, f"started more than {hours:g}h ago"))
    return stale


def search_all(client: MlflowClient, experiment_id: str, query: str) -> list[mlflow.entities.Run]:
    """Every run of the experiment that `query` matches, page by page."""
    page = client.search_runs([experiment_id], query)
    found = list(page)
    while page.token:
        page = client.search_runs([experiment_id], query, page_token=page.token)
        found += page
    return found


@dataclass
class RunLogger:
    """The logging calls of one run: delivered, or journaled once the server has gone away."""

    project: Project
    tracking: Tracking
    run_id: str
    run_name: str
    # Re-checks the run's name against runs that raced it (start_run's runs), at the end.
    rename: Callable[[], str] = field(repr=False)
    offline: bool = False  # the server stopped answering: calls go to the journal
    delivery: Delivery = field(init=False)
    # Calls sent in the background and not yet settled: (future, their entry).
    _pending: list[tuple[Future[None], dict[str, Any]]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        staging = Path(tempfile.mkdtemp(prefix="mlflow-run-"))
        self.delivery = Delivery(self.project, self.tracking, self.run_id, staging)

    @property
    def uri(self) -> str:
        return self.tracking.uri

    @property
    def spool(self) -> Path:
        """<spool_dir>/<run_id>: the journal, once there is one."""
        return self.tracking.spool_root / self.run_id

    @property
    def on_loss(self) -> str:
        """spool | fail: what losing the server does to the job (tracking.on_server_loss,
        `auto` resolved: fail where CI is set, else spool)."""
        policy = self.tracking.settings.on_server_loss
        if policy == "auto":
            return "fail" if os.environ.get("CI") else "spool"
        return policy

    def _call(self, name: str, *objects: Any) -> None:
        """The `name` call written (its files staged), then delivered or journaled."""
        entry = journal.write(name, self.delivery.folder, *objects)
        self._deliver_or_spool(lambda: journal.deliver(self.delivery, entry), lambda: entry)

    def _deliver_or_spool(
        self, send: Callable[[], None], entry: Callable[[], dict[str, Any]]
    ) -> None:
        """Online, `send` delivers; a spooled run (or one whose server is lost while sending)
        appends `entry()` to its journal, for `sync` (then stops, with on_loss = fail)."""
        if not self.offline:
            try:
                send()
                return
            except Exception as error:
                if not unreachable(error):
                    raise
                self.go_offline(error)
                journal.append(self.spool, entry())
                self.stop_if_failing(error)
                return
        journal.append(self.spool, entry())

    def stop_if_failing(self, error: BaseException | None = None) -> None:
        """With `on_loss` = fail, a job whose run is journaled stops with an error."""
        if self.offline and self.on_loss == "fail":
            raise TrackingError(
                f"the tracking server {self.uri} stopped answering, and tracking.on_server_loss "
                f"is fail (the default where CI is set): the job fails. The run is journaled "
                f"in {self.spool}: `make sync` when the server is back."
            ) from error

    def go_offline(self, error: BaseException) -> None:
        """Journal from now on: the header first, then the staged files move to the spool.
        With `on_loss` = fail, the job then stops (its end is journaled as FAILED)."""
        self.offline = True
        header = journal.write("run", self.spool, self.run_id, self.uri, str(error), self.delivery)
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

    def dataset(self, dataset: Dataset, context: str, model_id: str | None = None) -> None:
        """An input of the run (and of the logged model `model_id`, when given)."""
        self._call("dataset", dataset, context, model_id)

    def model_metrics(self, metrics: list[Metric], datasets: dict[str, Dataset]) -> None:
        """Metrics of the model this run logged, each linked to the dataset its key's prefix
        names in `datasets` (e.g. {"test_": the test split}): the model's page shows them."""
        self._call("model_metrics", metrics, datasets)

    def figure(self, figure: Figure, artifact_file: str) -> None:
        self._call("figure", figure, artifact_file)

    def text(self, text: str, artifact_file: str) -> None:
        self._call("text", text, artifact_file)

    def table(self, table: pd.DataFrame, artifact_file: str) -> None:
        """Log a table (online: serialised once, by MLflow)."""
        client, run_id = self.tracking.client, self.run_id
        self._direct(lambda: client.log_table(run_id, table, artifact_file),
                     "table", table, artifact_file)  # fmt: skip

    def model(self, spec: ModelSpec[Any], model: Any, sample: pd.DataFrame) -> str | None:
        """Log the model with signature and input example; its URI (None when spooled). Online,
        it is serialised once, straight into the run; only a spooled run saves it for `sync`."""

        def send() -> None:
            logged = spec.log(model, sample)
            self.delivery.model_uri, self.delivery.model_id = logged.model_uri, logged.model_id

        self._direct(send, "model", spec, model, sample)
        return None if self.offline else self.delivery.model_uri

    def _direct(self, send: Callable[[], None], name: str, *objects: Any) -> None:
        """Online, `send` logs the objects straight to the run (nothing staged); spooled, they
        are written into the spool as the `name` call, for `sync`."""
        self._deliver_or_spool(send, lambda: journal.write(name, self.spool, *objects))

    def kill(self) -> None:
        """End the run KILLED after an interrupted `end`: still the active run, or popped by
        `mlflow.end_run` before the store heard of its end (`run_command` would then find no
        run to end, and the store would keep it RUNNING). Best effort: the interrupt comes
        first."""
        if self.offline:
            return  # the journal decides its end at `sync`
        with no_retries(), contextlib.suppress(Exception):
            active = mlflow.active_run()
            if active is not None and active.info.run_id == self.run_id:
                end_active_run("KILLED")
            elif self.tracking.client.get_run(self.run_id).info.status == "RUNNING":
                self.tracking.client.set_terminated(self.run_id, "KILLED")
            shutil.rmtree(self.delivery.folder, ignore_errors=True)

    def register(self, model_uri: str | None, name: str, alias: str) -> str | None:
        """Register the run's model (`model_uri`: from an earlier stage, else what `model`
        logged); the new version, or None when the registration was spooled."""
        self._call("register", model_uri, name, alias)
        return None if self.offline else self.delivery.version

    def end(self, status: str) -> None:
        """End the active run (or record its end in the journal); a run that raced another
        for its name moves to the next free one first."""
        try:
            self._settle()
            if not self.offline:
                self.run_name = self.rename()
        except Exception as error:
            if not unreachable(error):
                raise
            if not self.offline:
                self.go_offline(error)
        if self.offline:
            with no_retries():  # only pops the run: the server is known to be gone
                end_active_run(status)
        self._call("end", status)
        if not self.offline:
            shutil.rmtree(self.delivery.folder, ignore_errors=True)
        elif status == "FINISHED":
            self.stop_if_failing()


@contextmanager
def nested_under(run_id: str) -> Iterator[None]:
    """The runs started inside nest under `run_id` (a sweep's parent run)."""
    _parent.append(run_id)
    try:
        yield
    finally:
        _parent.remove(run_id)


@contextmanager
def start_run(project: Project, tracking: Tracking, label: str) -> Iterator[RunLogger]:
    """One run per job: attach to the run `mlflow run` created, or start one named
    `<project>-<label>-<n>` (nested under a sweep's parent run, inside `nested_under`). A
    server lost while the run is created fails the job with one line (nothing is spooled: no
    run to spool into)."""
    uri = tracking.uri
    try:
        run, experiment_id = _create(tracking, label)
        run_name = tracking.unique_run_name(experiment_id, label, run.info.run_id)
    except Exception as error:
        if not unreachable(error):
            raise
        with no_retries():
            end_active_run("FAILED")
        raise TrackingError(
            f"the tracking server {uri} stopped answering while the run was being created: "
            "start it and run again (`make doctor` lists a run left RUNNING)."
        ) from error
    run_id = run.info.run_id
    logger = RunLogger(
        project,
        tracking,
        run_id,
        run_name,
        rename=lambda: tracking.unique_run_name(experiment_id, label, run_id),
    )
    with _ending(logger):
        yield logger


def _create(tracking: Tracking, label: str) -> tuple[mlflow.ActiveRun, str]:
    attached = os.environ.get("MLFLOW_RUN_ID")  # `mlflow run` made the run
    if attached:
        tracking.check_attached(attached)
        experiment_id = tracking.client.get_run(attached).info.experiment_id
        return mlflow.start_run(run_id=attached), experiment_id
    experiment_id = tracking.ensure_experiment()
    mlflow.set_experiment(experiment_id=experiment_id)
    run_name = tracking.next_run_name(experiment_id, label)
    parent = _parent[-1] if _parent else None
    return mlflow.start_run(run_name=run_name, parent_run_id=parent), experiment_id


@contextmanager
def _ending(logger: RunLogger) -> Iterator[RunLogger]:
    """The run ends FINISHED, FAILED on an error, KILLED on Ctrl-C or SIGTERM."""
    status = "FAILED"
    try:
        if not logger.offline:
            logger.tags(process_tags())  # who is logging it now: `gc` ends it once gone
        yield logger
        status = "FINISHED"
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (commands.Terminated)
        status = "KILLED"
        raise
    finally:
        try:
            logger.end(status)
        except KeyboardInterrupt:  # Ctrl-C while the run was ending
            logger.kill()
            raise
        except Exception as error:
            if status == "FINISHED":
                raise  # the job's own last step failed: that is its error
            # The error or interrupt that stopped the job is what the command reports.
            log.warning("could not end run %s as %s: %s", logger.run_id, status, error)
