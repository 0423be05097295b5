"""Retention: end stale RUNNING runs as KILLED, delete stale failed runs, then purge deleted
runs and their artifacts (`mlflow gc`).

The policy lives in `conf/tracking/default.yaml` (`tracking.retention`). A run that a registered
model version comes from is never deleted, whatever its status.
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
    """`mlflow gc` failed; the message has its output."""


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


def collect(tracking: Tracking, apply: bool) -> list[str]:
    """Apply the policy (or, without `apply`, say what it would do); one line per action."""
    client, policy = tracking.client, tracking.settings.retention
    experiment = client.get_experiment_by_name(tracking.settings.experiment_name)
    lines = []
    if experiment is not None:
        hours = policy.stale_running_hours
        for run, reason in stale_running_runs(client, experiment.experiment_id, hours):
            if apply:
                client.set_terminated(run.info.run_id, "KILLED")
            verb = "ended" if apply else "would end"
            lines.append(f"{verb} RUNNING run {run.info.run_name} as KILLED ({reason})")
        for run in stale_failed_runs(client, experiment.experiment_id, policy.failed_run_days):
            if apply:
                client.delete_run(run.info.run_id)
            verb = "deleted" if apply else "would delete"
            lines.append(f"{verb} {run.info.status} run {run.info.run_name} ({run.info.run_id})")
    command = gc_command(tracking)
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
        lines.append(f"purged runs deleted more than {policy.purge_after_days}d ago")
    else:
        lines.append(f"would run: {' '.join(command)}")
    if not apply:
        lines.append("dry run: nothing changed; `gc --apply` (make gc ARGS=--apply) applies it")
    return lines
