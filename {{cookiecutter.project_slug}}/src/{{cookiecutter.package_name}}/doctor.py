"""`doctor`: is this checkout ready to track runs? One line per check, with the fix for each ✗."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from . import environment
from .config import Config
from .data import dvc
from .tracking.journal import pending
from .tracking.lineage import git_status
from .tracking.store import TrackingError, ensure_experiment, preflight, resolve_uri


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}"
        return line if self.ok else f"{line}\n    fix: {self.fix}"


def _settings(cfg: Config) -> Check:
    """Where each setting comes from (.env, the environment), values of secrets never shown."""
    found = [f"{name} from {environment.origin(name)}" for name in environment.SETTINGS]
    shown = [line for line in found if not line.endswith("unset")]
    return Check("settings", True, "; ".join(shown) or "none set (embedded defaults)")


def _tracking_uri(cfg: Config) -> Check:
    uri, embedded = resolve_uri(cfg)
    origin = "embedded default, MLFLOW_TRACKING_URI unset" if embedded else "MLFLOW_TRACKING_URI"
    return Check("tracking URI", True, f"{uri} ({origin})")


def _reachable(cfg: Config) -> Check:
    uri, _ = resolve_uri(cfg)
    try:
        preflight(uri, cfg.tracking.preflight_timeout_s)
    except TrackingError as err:
        return Check("server reachable", False, str(err), "start the server or fix the URI")
    mlflow.set_tracking_uri(uri)
    return Check("server reachable", True, "answers")


def _authenticated(cfg: Config) -> Check:
    try:
        MlflowClient().search_experiments(max_results=1)
    except MlflowException as err:
        return Check(
            "authentication",
            False,
            str(err).splitlines()[0][:200],
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (see README)",
        )
    return Check("authentication", True, "accepted")


def _artifacts(cfg: Config) -> Check:
    """Log a small artifact in a throw-away run, read it back, delete the run."""
    client = MlflowClient()
    try:
        experiment_id = ensure_experiment(cfg, mlflow.get_tracking_uri())
        run = client.create_run(experiment_id, run_name="doctor", tags={"run_type": "doctor"})
        try:
            client.log_text(run.info.run_id, "ok", "doctor.txt")
            stored = [item.path for item in client.list_artifacts(run.info.run_id)]
            if stored != ["doctor.txt"]:
                raise RuntimeError(f"uploaded doctor.txt, the store lists {stored}")
        finally:
            client.delete_run(run.info.run_id)
    except Exception as err:  # any failure here is what the check reports
        return Check(
            "artifact upload",
            False,
            str(err).splitlines()[0][:200],
            "check the server's --artifacts-destination and its object-store credentials",
        )
    return Check("artifact upload", True, f"stored under {run.info.artifact_uri}")


def _dvc_remote(cfg: Config) -> Check:
    done = dvc("status", "--cloud", f"{cfg.data.raw_path}.dvc")
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        return Check(
            "DVC remote",
            False,
            message[-1] if message else "dvc status --cloud failed",
            "check `dvc remote list` and the remote's credentials (dvc remote modify)",
        )
    return Check("DVC remote", True, "reachable")


def _git_clean(cfg: Config) -> Check:
    status = git_status()
    if status is None:
        return Check("git", False, "not a git repository", "git init && git add -A && git commit")
    if status:
        changed = len(status.splitlines())
        return Check(
            "git",
            False,
            f"{changed} uncommitted change(s): runs record git.dirty=true",
            "commit (or stash) before a run you want to reproduce",
        )
    return Check("git", True, "clean")


def _spooled(cfg: Config) -> Check:
    waiting = pending(cfg)
    if waiting:
        return Check(
            "spooled runs",
            False,
            f"{len(waiting)} run(s) recorded while the server was unreachable",
            "make sync",
        )
    return Check("spooled runs", True, "none")


# Each needs the one before it: after the first failure the rest would only echo it.
TRACKING_CHECKS: tuple[Callable[[Config], Check], ...] = (_reachable, _authenticated, _artifacts)


def diagnose(cfg: Config) -> list[Check]:
    """Every check, in order; the tracking chain stops at its first failure."""
    results = [_settings(cfg), _tracking_uri(cfg)]
    for check in TRACKING_CHECKS:
        results.append(check(cfg))
        if not results[-1].ok:
            break
    return [*results, _spooled(cfg), _dvc_remote(cfg), _git_clean(cfg)]
