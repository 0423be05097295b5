"""Retention: end stale RUNNING runs as KILLED, delete stale failed runs, then purge deleted
runs, logged models and experiments with their artifacts (`mlflow gc`).

The policy lives in `conf/tracking/default.yaml` (`tracking.retention`). A run that a registered
model version comes from is never deleted, whatever its status. The purge deletes folders the
store names, so it first lists every one of them (the dry run shows them) and refuses, naming
them, any outside the project's own artifact folder.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ProjectError
from .tracking.run import search_all, stale_running_runs

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from .tracking.store import Tracking

DAY_MS = 86_400_000


class RetentionError(ProjectError):
    """The purge was refused (a folder outside the project) or `mlflow gc` failed."""


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


def gc_command(tracking: Tracking) -> list[str] | None:
    """`mlflow gc` for runs deleted more than purge_after_days ago; None for a tracking server,
    whose database only its administrator reaches (the README gives them the command)."""
    if tracking.scheme != "sqlite":
        return None
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    days = tracking.settings.retention.purge_after_days
    return [str(mlflow_cli), "gc", "--older-than", f"{days}d", "--backend-store-uri", tracking.uri]


def purged(tracking: Tracking) -> list[tuple[str, str]]:
    """What `mlflow gc --older-than <purge_after_days>d` purges from the embedded store, each
    with the artifact folder it deletes: runs, logged models and experiments deleted that long
    ago (and the runs of those experiments)."""
    from mlflow.entities import ViewType
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    age = int(tracking.settings.retention.purge_after_days * DAY_MS)
    store = SqlAlchemyStore(tracking.uri, tracking.artifact_location())
    try:
        found = []
        experiments = store.search_experiments(
            view_type=ViewType.DELETED_ONLY,
            filter_string=f"last_update_time < {int(time.time() * 1000) - age}",
        )
        run_ids = set(store._get_deleted_runs(older_than=age))  # what `mlflow gc` selects
        for experiment in experiments:
            found.append((f"experiment {experiment.name}", experiment.artifact_location))
            every = store.search_runs([experiment.experiment_id], None, ViewType.ALL, 50_000)
            run_ids |= {run.info.run_id for run in every}
        for run_id in sorted(run_ids):
            run = store.get_run(run_id)
            found.append((f"run {run.info.run_name} ({run_id})", run.info.artifact_uri))
        for model_id in store._get_deleted_logged_models(older_than=age):
            model = store.get_logged_model(model_id, allow_deleted=True)
            found.append((f"logged model {model_id}", model.artifact_location))
        return found
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
    command = gc_command(tracking)
    selected: list[tuple[str, str]] = []
    refused: list[str] = []
    if command is not None:
        selected = purged(tracking)
        if policy.purge_after_days == 0:  # the runs deleted now are purged at once
            selected += [(f"run {r.info.run_name} ({r.info.run_id})", r.info.artifact_uri)
                         for r in failed]  # fmt: skip
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
    if command is None:
        lines.append(
            f"purge on the server, as its administrator: mlflow gc --older-than "
            f"{policy.purge_after_days}d "
            f"--backend-store-uri <its database URI> --tracking-uri {tracking.uri}"
        )
    elif apply:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RetentionError(f"`mlflow gc` failed: {done.stderr.strip()[-2000:]}")
        lines += [f"purged {what}: {where}" for what, where in selected]
        lines.append(f"purged what was deleted more than {policy.purge_after_days}d ago")
    else:
        lines += [f"would purge {what}: {where}" for what, where in selected]
        lines += [*refused, f"would run: {' '.join(command)}"]
    return lines if apply else [*lines, DRY_RUN]


def check_inside(selected: list[tuple[str, str]], home: str, apply: bool) -> list[str]:
    """The purge deletes only folders inside the project's artifact folder `home`: one
    outside (a store that names it) is refused with `--apply`, and named in the dry run."""
    outside = [(what, where) for what, where in selected if not inside_folder(where, home)]
    if not outside:
        return []
    named = "; ".join(f"{what} at {where}" for what, where in outside)
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
    from urllib.parse import urlparse

    parsed, home = urlparse(place), urlparse(folder)
    if parsed.scheme != home.scheme or parsed.scheme != "file":
        return False
    path, root = Path(parsed.path).resolve(), Path(home.path).resolve()
    return path == root or root in path.parents
