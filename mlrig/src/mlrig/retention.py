"""Retention: end stale RUNNING runs as KILLED, delete stale failed runs, then purge deleted
runs, logged models and experiments with their artifacts (what `mlflow gc` does).

The policy lives in `conf/tracking/default.yaml` (`tracking.retention`). A run that a registered
model version comes from is never deleted, whatever its status. The purge deletes folders the
store names, so it first lists every one of them (the dry run shows them), refuses, naming
them, any outside the project's own artifact folder, and then deletes exactly those -- it
selects nothing anew between the check and the deletion.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from .errors import ProjectError
from .tracking.run import search_all, stale_running_runs

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from .tracking.store import Tracking

DAY_MS = 86_400_000


class RetentionError(ProjectError):
    """The purge was refused: a folder outside the project."""


def stale_failed_runs(client: MlflowClient, experiment_id: str, days: float) -> list[Run]:
    """FAILED or KILLED runs that ended more than `days` ago and back no model version."""
    cutoff = int(time.time() * 1000 - days * DAY_MS)
    stale = []
    for status in ("FAILED", "KILLED"):
        query = f"attributes.status = '{status}' AND attributes.end_time < {cutoff}"
        stale += search_all(client, experiment_id, query)
    return [
        run for run in stale if not client.search_model_versions(f"run_id = '{run.info.run_id}'")
    ]


@dataclass(frozen=True)
class Purged:
    """A record the purge deletes for good, with its artifact folder."""

    kind: str  # run, logged model or experiment
    id: str
    label: str
    folder: str  # its artifact location (a file: URI)

    def __str__(self) -> str:
        return f"{self.label}: {self.folder}"


def purged(tracking: Tracking) -> list[Purged]:
    """What `mlflow gc --older-than <purge_after_days>d` would purge from the embedded store:
    runs, logged models and experiments deleted that long ago (and the runs of those
    experiments)."""
    from mlflow.entities import ViewType

    age = int(tracking.settings.retention.purge_after_days * DAY_MS)
    with _store(tracking) as store:
        found = []
        experiments = store.search_experiments(
            view_type=ViewType.DELETED_ONLY,
            filter_string=f"last_update_time < {int(time.time() * 1000) - age}",
        )
        run_ids = set(store._get_deleted_runs(older_than=age))  # what `mlflow gc` selects
        for experiment in experiments:
            every = store.search_runs([experiment.experiment_id], None, ViewType.ALL, 50_000)
            run_ids |= {run.info.run_id for run in every}
        for run_id in sorted(run_ids):
            run = store.get_run(run_id)
            label = f"run {run.info.run_name} ({run_id})"
            found.append(Purged("run", run_id, label, run.info.artifact_uri))
        for model_id in store._get_deleted_logged_models(older_than=age):
            model = store.get_logged_model(model_id, allow_deleted=True)
            label = f"logged model {model_id}"
            found.append(Purged("logged model", model_id, label, model.artifact_location))
        for experiment in experiments:  # last: their runs go first
            label = f"experiment {experiment.name}"
            found.append(
                Purged("experiment", experiment.experiment_id, label, experiment.artifact_location)
            )
        return found


def deleted_now(run: Run) -> Purged:
    return Purged("run", run.info.run_id, f"run {run.info.run_name} ({run.info.run_id})",
                  run.info.artifact_uri)  # fmt: skip


def purge(tracking: Tracking, selected: list[Purged]) -> None:
    """Delete for good exactly what was listed and checked -- each folder, checked again as it
    goes, then its record -- as `mlflow gc` does, without selecting anything anew."""
    home = str(tracking.artifact_location())
    with _store(tracking) as store:
        hard_delete = {
            "run": store._hard_delete_run,
            "logged model": store._hard_delete_logged_model,
            "experiment": store._hard_delete_experiment,
        }
        for item in selected:
            check_inside([item], home, apply=True)
            shutil.rmtree(Path(urlparse(item.folder).path).resolve(), ignore_errors=True)
            hard_delete[item.kind](item.id)


@contextmanager
def _store(tracking: Tracking) -> Iterator[SqlAlchemyStore]:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(tracking.uri, tracking.artifact_location())
    try:
        yield store
    finally:
        store.engine.dispose()


def collect(tracking: Tracking, apply: bool) -> list[str]:
    """Apply the policy (or, without `apply`, say what it would do); one line per action.
    Nothing is changed when the purge would delete a folder outside the project."""
    client, policy = tracking.client, tracking.settings.retention
    experiment_id = tracking.experiment_id()
    hours, days = policy.stale_running_hours, policy.failed_run_days
    running = stale_running_runs(client, experiment_id, hours) if experiment_id else []
    failed = stale_failed_runs(client, experiment_id, days) if experiment_id else []
    embedded = tracking.scheme == "sqlite"
    selected: list[Purged] = []
    refused: list[str] = []
    if embedded:
        selected = purged(tracking)
        if policy.purge_after_days == 0:  # the runs deleted now are purged at once
            selected = [*map(deleted_now, failed), *selected]
        refused = check_inside(selected, str(tracking.artifact_location()), apply)
    lines = []
    for run, reason in running:
        if apply:
            client.set_terminated(run.info.run_id, "KILLED")
        verb = "ended" if apply else "would end"
        lines.append(f"{verb} RUNNING run {run.info.run_name} as KILLED ({reason})")
    for run in failed:
        if apply:
            client.delete_run(run.info.run_id)
        verb = "deleted" if apply else "would delete"
        lines.append(f"{verb} {run.info.status} run {run.info.run_name} ({run.info.run_id})")
    if not embedded:
        lines.append(
            f"purge on the server, as its administrator: mlflow gc --older-than "
            f"{policy.purge_after_days}d "
            f"--backend-store-uri <its database URI> --tracking-uri {tracking.uri}"
        )
    elif apply:
        purge(tracking, selected)
        lines += [f"purged {item}" for item in selected]
        lines.append(f"purged what was deleted more than {policy.purge_after_days}d ago")
    else:
        lines += [f"would purge {item}" for item in selected]
        lines += refused
    return lines if apply else [*lines, DRY_RUN]


def check_inside(selected: list[Purged], home: str, apply: bool) -> list[str]:
    """The purge deletes only folders inside the project's artifact folder `home`: one
    outside (a store that names it) is refused with `--apply`, and named in the dry run."""
    outside = [item for item in selected if not inside_folder(item.folder, home)]
    if not outside:
        return []
    named = "; ".join(f"{item.label} at {item.folder}" for item in outside)
    message = (
        f"{named}: outside the project's {home}, which is all the purge deletes. Delete "
        "those by hand if they are yours, or `make relocate` a moved or copied project."
    )
    if apply:
        raise RetentionError(f"refusing to purge (nothing changed): {message}")
    return [f"`gc --apply` would refuse: {message}"]


DRY_RUN = "dry run: nothing changed; `gc --apply` (make gc ARGS=--apply) applies it"


def inside_folder(place: str, folder: str) -> bool:
    """Whether an artifact location (a file: URI) is `folder` or lies below it, `..` resolved."""
    parsed, home = urlparse(place), urlparse(folder)
    if parsed.scheme != home.scheme or parsed.scheme != "file":
        return False
    path, root = Path(parsed.path).resolve(), Path(home.path).resolve()
    return path == root or root in path.parents
