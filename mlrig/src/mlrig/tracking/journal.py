"""The journal of a run's logging calls, and the one table of operations behind it.

Each operation says how a call is written (a JSON entry, plus the files it needs under a
folder) and how it is delivered to the tracking server. A live run writes every call to a
staging folder and delivers it at once through this table; once the server stops answering,
the same entries are appended to `<spool_dir>/<run_id>/journal.jsonl` (files beside it), and
`sync` delivers them through the same table when the server is back. An entry whose operation
is not in the table is an error, never skipped.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow.entities import Dataset, LoggedModelStatus, Metric
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from .. import registry
from ..errors import ProjectError
from ..models.base import ModelSpec
from .delivery import (
    deliver_dataset,
    deliver_metrics,
    deliver_params,
    deliver_tags,
    end_active_run,
    unreachable,
)
from .store import Tracking

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..project import Project

log = logging.getLogger(__name__)

JOURNAL = "journal.jsonl"
PROGRESS = "replayed.json"  # what an interrupted `sync` already delivered


class SyncError(ProjectError):
    """A spooled run cannot be replayed; the message says why and what to do."""


@dataclass
class Delivery:
    """The state one run's calls share while they are delivered (live, or by one `sync`)."""

    project: Project
    tracking: Tracking
    run_id: str
    folder: Path  # where the entries' files are
    model_uri: str | None = None  # what the model call logged; the registration uses it
    model_id: str | None = None  # the logged model: its metrics and inputs are linked to it
    version: str | None = None  # the model version the registration created


@dataclass(frozen=True)
class Op:
    """One kind of logging call: `write(folder, *objects)` returns its entry (and saves the
    files it needs under `folder`); `deliver(delivery, entry)` sends it to the server."""

    write: Callable[..., dict[str, Any]]
    deliver: Callable[[Delivery, dict[str, Any]], None]


def _write_figure(folder: Path, figure: Figure, artifact_file: str) -> dict[str, Any]:
    path = folder / "artifacts" / artifact_file
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return {"file": artifact_file}


def _write_text(folder: Path, text: str, artifact_file: str) -> dict[str, Any]:
    path = folder / "artifacts" / artifact_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return {"file": artifact_file}


def _deliver_artifact(delivery: Delivery, entry: dict[str, Any]) -> None:
    """A file written under the folder's `artifacts/` (a figure, a text)."""
    path = delivery.folder / "artifacts" / entry["file"]
    parent = str(Path(entry["file"]).parent)
    client = delivery.tracking.client
    client.log_artifact(delivery.run_id, str(path), None if parent == "." else parent)


def _write_table(folder: Path, table: pd.DataFrame, artifact_file: str) -> dict[str, Any]:
    path = folder / "tables" / artifact_file
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_json(path, orient="split", index=False)
    return {"file": artifact_file}


def _deliver_table(delivery: Delivery, entry: dict[str, Any]) -> None:
    table = pd.read_json(delivery.folder / "tables" / entry["file"], orient="split")
    delivery.tracking.client.log_table(delivery.run_id, table, entry["file"])


def _write_model(
    folder: Path, spec: ModelSpec[Any], model: Any, sample: pd.DataFrame
) -> dict[str, Any]:
    spec.save(model, folder / "model", sample)
    return {"model": spec.name}


def _deliver_model(delivery: Delivery, entry: dict[str, Any]) -> None:
    """Log the saved model into the active run (its signature and input example kept)."""
    spec = delivery.project.model(entry["model"])
    path = delivery.folder / "model"
    example = Model.load(path).load_input_example(path)
    logged = spec.log(spec.load(path), example)
    delivery.model_uri, delivery.model_id = logged.model_uri, logged.model_id


def _write_model_metrics(
    folder: Path, metrics: list[Metric], datasets: dict[str, Dataset]
) -> dict[str, Any]:
    """Metrics of the model the run logged: each key's prefix (test_, valid_, train_) names
    the dataset it was measured on, when the run logged one for that split."""
    named = {
        metric.key: {"name": dataset.name, "digest": dataset.digest}
        for metric in metrics
        for prefix, dataset in datasets.items()
        if metric.key.startswith(prefix)
    }
    points = [[m.key, m.value, m.timestamp, m.step] for m in metrics]
    return {"points": points, "datasets": named}


def _deliver_model_metrics(delivery: Delivery, entry: dict[str, Any]) -> None:
    if delivery.model_id is None:
        raise SyncError("the journal logs metrics of a model that no earlier entry logged")
    metrics = []
    for key, value, timestamp, step in entry["points"]:
        dataset = entry["datasets"].get(key) or {}
        metrics.append(
            Metric(key, value, timestamp, step, model_id=delivery.model_id,
                   dataset_name=dataset.get("name"), dataset_digest=dataset.get("digest"))
        )  # fmt: skip
    deliver_metrics(delivery.tracking.client, delivery.run_id, metrics)


def _deliver_register(delivery: Delivery, entry: dict[str, Any]) -> None:
    uri = entry["model_uri"] or delivery.model_uri
    if uri is None:
        raise SyncError("the journal registers a model that no earlier entry logged")
    version = registry.register(
        delivery.tracking, uri, entry["name"], entry["alias"], delivery.run_id
    )
    delivery.version = str(version.version)


def _write_run(
    folder: Path, run_id: str, uri: str, reason: str, model: Delivery | None = None
) -> dict[str, Any]:
    """The header: which run, on which server, why it was spooled, which job wrote it, and
    the model it had logged before (its metrics, journaled later, are linked to it)."""
    job = {"pid": os.getpid(), "host": socket.gethostname()}
    logged = {"model_uri": model.model_uri, "model_id": model.model_id} if model else {}
    return {"run_id": run_id, "uri": uri, "reason": reason, **job, **logged}


def _deliver_run(delivery: Delivery, entry: dict[str, Any]) -> None:
    """The journal's first entry: the run must exist on this server; it becomes active."""
    uri = delivery.tracking.uri
    if entry["uri"] != uri:
        raise SyncError(
            f"{delivery.folder} was spooled for {entry['uri']}, not {uri}: "
            f"set MLFLOW_TRACKING_URI={entry['uri']} and sync again"
        )
    try:
        run = delivery.tracking.client.get_run(delivery.run_id)
    except MlflowException as error:
        raise SyncError(f"run {delivery.run_id} is not on {uri}: {error.message}") from error
    # The run's own experiment: one set before (MLFLOW_EXPERIMENT_ID, an earlier run of this
    # process) would refuse to resume a run of another.
    mlflow.set_experiment(experiment_id=run.info.experiment_id)
    mlflow.start_run(run_id=delivery.run_id)


OPS: dict[str, Op] = {
    "run": Op(_write_run, _deliver_run),
    "tags": Op(
        lambda folder, tags: {"tags": tags},
        lambda d, entry: deliver_tags(d.tracking.client, d.run_id, entry["tags"]),
    ),
    "params": Op(
        lambda folder, params: {"params": params},
        lambda d, entry: deliver_params(d.tracking.client, d.run_id, entry["params"]),
    ),
    "metrics": Op(
        lambda folder, metrics: {
            "points": [[m.key, m.value, m.timestamp, m.step] for m in metrics]
        },
        lambda d, entry: deliver_metrics(
            d.tracking.client, d.run_id, [Metric(*point) for point in entry["points"]]
        ),
    ),
    "dataset": Op(
        lambda folder, dataset, context, model_id=None: {
            "dataset": dataset.to_dictionary(),
            "context": context,
            "model_id": model_id,
        },
        lambda d, entry: deliver_dataset(
            d.tracking.client,
            d.run_id,
            Dataset(**entry["dataset"]),
            entry["context"],
            entry.get("model_id"),
        ),
    ),
    "model_metrics": Op(_write_model_metrics, _deliver_model_metrics),
    "figure": Op(_write_figure, _deliver_artifact),
    "text": Op(_write_text, _deliver_artifact),
    "table": Op(_write_table, _deliver_table),
    "model": Op(_write_model, _deliver_model),
    "register": Op(
        lambda folder, model_uri, name, alias: {
            "model_uri": model_uri,
            "name": name,
            "alias": alias,
        },
        _deliver_register,
    ),
    "end": Op(
        lambda folder, status: {"status": status},
        lambda d, entry: mlflow.end_run(entry["status"]),
    ),
}


def write(name: str, folder: Path, *objects: Any) -> dict[str, Any]:
    """The entry of a `name` call (its files saved under `folder`)."""
    return {"op": name, **OPS[name].write(folder, *objects)}


def deliver(delivery: Delivery, entry: dict[str, Any]) -> None:
    op = OPS.get(entry.get("op", ""))
    if op is None:
        raise SyncError(f"{delivery.folder}: unknown journal operation {entry.get('op')!r}")
    op.deliver(delivery, entry)


def append(folder: Path, entry: dict[str, Any]) -> None:
    """Add one entry: a whole line or nothing. A write that fails part-way (a full disk) is
    cut back to the last whole line before the error goes on."""
    folder.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry) + "\n").encode()
    descriptor = os.open(folder / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = os.fstat(descriptor).st_size
        try:
            if os.write(descriptor, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / JOURNAL))
        except OSError:
            os.ftruncate(descriptor, size)
            raise
    finally:
        os.close(descriptor)


def pending(tracking: Tracking) -> list[Path]:
    """Spooled runs, oldest first."""
    root = tracking.spool_root
    folders = [p for p in root.iterdir() if (p / JOURNAL).exists()] if root.is_dir() else []
    return sorted(folders, key=lambda p: (p / JOURNAL).stat().st_mtime)


def read(folder: Path) -> list[dict[str, Any]]:
    """A journal's entries, checked: whole lines, a header, known operations."""
    text = (folder / JOURNAL).read_text()
    try:
        entries = [json.loads(line) for line in text.splitlines()]
    except json.JSONDecodeError as error:
        entries = None
        reason = str(error)
    if entries is None or (text and not text.endswith("\n")):
        raise SyncError(
            f"{folder}: a torn journal line ({reason if entries is None else 'no line end'}: "
            "a full disk?); it was not replayed: free space, then `sync --abandon` the run"
        )
    unknown = sorted({str(e.get("op")) for e in entries} - OPS.keys())
    if unknown:
        raise SyncError(f"{folder}: unknown journal operations {unknown}; it was not replayed")
    if not entries or entries[0]["op"] != "run":
        raise SyncError(f"{folder}: the journal does not start with its run; it was not replayed")
    return entries


def sync(project: Project, tracking: Tracking) -> tuple[list[str], bool]:
    """Replay every finished spooled run into the connected store; one line per run, and
    whether all of them went.

    A journal that cannot be replayed is reported and left; the others still go. A server
    that stops answering stops the sync (the next one resumes).
    """
    lines, complete = [], True
    for folder in pending(tracking):
        try:
            line, done = replay(project, tracking, folder)
        except Exception as error:
            if unreachable(error):
                raise
            line, done = f"{folder.name}: not replayed: {type(error).__name__}: {error}", False
        lines.append(line)
        complete = complete and done
    return lines, complete


def abandon(tracking: Tracking, run_id: str) -> str:
    """End a spooled run whose job is gone as FAILED, and set its journal aside."""
    folder = tracking.spool_root / run_id
    if not (folder / JOURNAL).exists():
        raise SyncError(f"no spooled run {run_id} in {tracking.spool_root}")
    try:
        tracking.client.set_terminated(run_id, "FAILED")
        failed = fail_unfinished_models(tracking, run_id)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        failed = ""
    kept = tracking.spool_root / "abandoned" / run_id
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(folder, kept)
    return f"{run_id}: ended as FAILED{failed}; its journal is kept in {kept}"


def _job_alive(header: dict[str, Any]) -> bool:
    """Whether the job that wrote a journal still runs (on this host: checked by its pid)."""
    if header.get("host") != socket.gethostname() or not header.get("pid"):
        return True  # another machine's job: it may well be running
    try:
        os.kill(int(header["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def replay(project: Project, tracking: Tracking, folder: Path) -> tuple[str, bool]:
    """Deliver one journal into its run, resuming where an interrupted `sync` stopped; say
    what happened and whether the run is complete."""
    header, *calls = read(folder)
    run_id = header["run_id"]
    if not calls or calls[-1]["op"] != "end":
        if _job_alive(header):
            return f"{run_id}: its job is still running; left in {folder}", False
        return (
            f"{run_id}: its job (pid {header.get('pid')}) ended before its run did: "
            f"`sync --abandon {run_id}` ends the run as FAILED",
            False,
        )
    progress_file = folder / PROGRESS
    progress = json.loads(progress_file.read_text()) if progress_file.exists() else {"done": 0}
    state = Delivery(
        project,
        tracking,
        run_id,
        folder,
        model_uri=progress.get("model_uri") or header.get("model_uri"),
        model_id=progress.get("model_id") or header.get("model_id"),
        version=progress.get("version"),
    )
    deliver(state, header)
    try:
        for index in range(progress["done"], len(calls)):
            deliver(state, calls[index])
            # Whole or not at all: a torn progress file would stop every later `sync`.
            written = progress_file.with_suffix(".tmp")
            written.write_text(json.dumps({"done": index + 1, **_shared(state)}))
            os.replace(written, progress_file)
    except BaseException:
        end_active_run("FAILED")  # the next `sync` resumes after the last delivered entry
        raise
    failed = fail_unfinished_models(tracking, run_id)
    shutil.rmtree(folder)
    registered = f", registered as version {state.version}" if state.version else ""
    return (
        f"{run_id}: replayed {len(calls)} logging calls into {header['uri']}{registered}{failed}",
        True,
    )


def fail_unfinished_models(tracking: Tracking, run_id: str) -> str:
    """Mark FAILED the run's logged models still PENDING once its job is over: uploads the
    server never finished (it died during one). What was done, as a clause of a line; best
    effort (a server without MLflow 3's logged models, say): the run's own state comes first."""
    client = tracking.client
    unfinished = []
    try:
        experiment = client.get_run(run_id).info.experiment_id
        page_token = None
        while True:
            page = client.search_logged_models(
                [experiment], filter_string=f"source_run_id = '{run_id}'", page_token=page_token
            )
            # (filtering on status here finds nothing in MLflow 3's sqlite store)
            unfinished += [m for m in page if m.status == LoggedModelStatus.PENDING]
            page_token = page.token
            if not page_token:
                break
        for model in unfinished:
            client.finalize_logged_model(model.model_id, "FAILED")
    except MlflowException as error:
        log.warning("%s: its unfinished logged models were left as they are: %s", run_id, error)
        return ""
    return f"; {len(unfinished)} unfinished model upload(s) marked FAILED" if unfinished else ""


def _shared(state: Delivery) -> dict[str, Any]:
    return {"model_uri": state.model_uri, "model_id": state.model_id, "version": state.version}
