"""`doctor`: is this checkout ready to track runs? One line per check, with the fix for each ✗."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import environment
from .config import Config
from .data import dvc
from .tracking.journal import pending
from .tracking.lineage import git_status
from .tracking.run import stale_running_runs
from .tracking.store import DEFAULT_EXPERIMENT_ID, Tracking, TrackingError

if TYPE_CHECKING:
    from .project import Project

LIBRARY = "mlrig"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}"
        return line if self.ok else f"{line}\n    fix: {self.fix}"


def _settings(tracking: Tracking, cfg: Config) -> Check:
    """Where each setting comes from (.env, the environment), values of secrets never shown."""
    found = [f"{name} from {environment.origin(name)}" for name in environment.SETTINGS]
    shown = [line for line in found if not line.endswith("unset")]
    return Check("settings", True, "; ".join(shown) or "none set (embedded defaults)")


def _mlflow_run(tracking: Tracking, cfg: Config) -> Check:
    """Where a bare `mlflow run .` puts its run. MLflow reads no .env: only exported settings
    count. Without MLFLOW_EXPERIMENT_NAME it uses the store's experiment 0, which `make setup`
    makes the project's on the embedded store; `make mlflow-run` needs none of this."""
    name = cfg.tracking.experiment_name
    exported = {
        setting
        for setting in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")
        if environment.origin(setting) == "environment"
    }
    chosen = os.environ["MLFLOW_EXPERIMENT_NAME"] if "MLFLOW_EXPERIMENT_NAME" in exported else None
    if chosen is not None and chosen != name:
        fix = f"export MLFLOW_EXPERIMENT_NAME={name} (or unset it)"
        return Check("mlflow run", False, f"MLFLOW_EXPERIMENT_NAME is {chosen!r}", fix)
    if "MLFLOW_TRACKING_URI" not in exported and not tracking.embedded:
        note = "MLFLOW_TRACKING_URI comes from .env, which a bare `mlflow run` does not read"
        return Check("mlflow run", True, f"use `make mlflow-run` ({note})")
    if chosen is None:
        default = tracking.client.get_experiment(DEFAULT_EXPERIMENT_ID).name
        if default != name:
            hint = f"export MLFLOW_EXPERIMENT_NAME={name} for a bare `mlflow run`"
            return Check("mlflow run", True, f"`make mlflow-run`, or {hint} (not {default!r})")
    return Check("mlflow run", True, f"runs land in the experiment {name!r}")


def _tracking_uri(tracking: Tracking, cfg: Config) -> Check:
    embedded = tracking.embedded
    origin = "embedded default, MLFLOW_TRACKING_URI unset" if embedded else "MLFLOW_TRACKING_URI"
    return Check("tracking URI", True, f"{tracking.uri} ({origin})")


def _reachable(tracking: Tracking, cfg: Config) -> Check:
    """The preflight; then MLflow points at the store (a new sqlite one is made as every
    command makes it)."""
    try:
        tracking.open()
    except TrackingError as err:
        return Check("server reachable", False, str(err), "start the server or fix the URI")
    return Check("server reachable", True, "answers")


def _authenticated(tracking: Tracking, cfg: Config) -> Check:
    from mlflow.exceptions import MlflowException

    try:
        tracking.client.search_experiments(max_results=1)
    except MlflowException as err:
        return Check(
            "authentication",
            False,
            str(err).splitlines()[0][:200],
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (see README)",
        )
    return Check("authentication", True, "accepted")


def _artifacts(tracking: Tracking, cfg: Config) -> Check:
    """Log a small artifact in a throw-away run, read it back, delete the run."""
    client = tracking.client
    try:
        experiment_id = tracking.ensure_experiment()
        run = client.create_run(experiment_id, run_name="doctor", tags={"run_type": "doctor"})
        try:
            client.log_text(run.info.run_id, "ok", "doctor.txt")
            stored = [item.path for item in client.list_artifacts(run.info.run_id)]
            if stored != ["doctor.txt"]:
                raise RuntimeError(f"uploaded doctor.txt, the store lists {stored}")
        finally:
            client.set_terminated(run.info.run_id, "FINISHED")
            client.delete_run(run.info.run_id)
    except Exception as err:  # any failure here is what the check reports
        return Check(
            "artifact upload",
            False,
            str(err).splitlines()[0][:200],
            "check the server's --artifacts-destination and its object-store credentials",
        )
    return Check("artifact upload", True, f"stored under {run.info.artifact_uri}")


def _dvc_remote(tracking: Tracking, cfg: Config) -> Check:
    """The default remote answers and holds the tracked raw data (a remote that was deleted
    or moved answers with everything missing)."""
    done = dvc("status", "--cloud", "--json", f"{cfg.data.raw_path}.dvc")
    fix = "check `dvc remote list` and the remote's credentials (dvc remote modify)"
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        return Check(
            "DVC remote", False, message[-1] if message else "dvc status --cloud failed", fix
        )
    try:
        differences = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        differences = {"?": done.stdout.strip()[:200]}
    missing = {path: state for path, state in differences.items() if state != "deleted"}
    if missing:
        listed = ", ".join(f"{path}: {state}" for path, state in missing.items())
        return Check(
            "DVC remote",
            False,
            f"it does not hold the tracked data ({listed})",
            "`dvc push` if it is new; else check its URL (`dvc remote list`): was it moved?",
        )
    return Check("DVC remote", True, "reachable, holds the tracked data")


def _git_clean(tracking: Tracking, cfg: Config) -> Check:
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


def _artifact_locations(tracking: Tracking, cfg: Config) -> Check:
    """A sqlite store copied or moved with its project still points at the old artifacts."""
    if tracking.scheme != "sqlite":
        return Check("artifact locations", True, "not a sqlite store: none of this project's")
    foreign = tracking.foreign_locations()
    if foreign:
        return Check(
            "artifact locations",
            False,
            f"{len(foreign)} experiment(s) keep artifacts outside this project, e.g. "
            f"{foreign[0]} (the project was moved or copied)",
            "make relocate",
        )
    return Check("artifact locations", True, "inside the project")


def _spooled(tracking: Tracking, cfg: Config) -> Check:
    waiting = pending(tracking)
    if waiting:
        return Check(
            "spooled runs",
            False,
            f"{len(waiting)} run(s) recorded while the server was unreachable",
            "make sync",
        )
    return Check("spooled runs", True, "none")


# Each needs the one before it: after the first failure the rest would only echo it.
# A moved store's artifact locations are checked before the upload writes to the old place.
def _stale_runs(tracking: Tracking, cfg: Config) -> Check:
    experiment_id = tracking.experiment_id()
    hours = cfg.tracking.retention.stale_running_hours
    stale = stale_running_runs(tracking.client, experiment_id, hours) if experiment_id else []
    if not stale:
        return Check("stale runs", True, "no RUNNING run whose process is gone")
    listed = ", ".join(f"{run.info.run_name} ({reason})" for run, reason in stale[:5])
    return Check(
        "stale runs",
        False,
        f"{len(stale)} RUNNING run(s) nobody will end: {listed}",
        "`make gc` lists them, `make gc ARGS=--apply` ends them as KILLED",
    )


def library_source(root: Path) -> Check:
    """Where the project installs the library from: a path source works on this machine only,
    so its CI elsewhere needs the git or the published source."""
    from importlib.metadata import version

    pyproject = root / "pyproject.toml"
    settings = tomllib.loads(pyproject.read_text()) if pyproject.is_file() else {}
    source = settings.get("tool", {}).get("uv", {}).get("sources", {}).get(LIBRARY)
    installed = f"{LIBRARY} {version(LIBRARY)}"
    if not isinstance(source, dict):
        return Check("library", True, f"{installed}, the published package")
    if "git" in source:
        return Check("library", True, f"{installed} from {source['git']} at {source.get('rev')}")
    return Check(
        "library",
        True,
        f"{installed} from the folder {source.get('path')} (a path source: this machine only). "
        f"Before CI runs elsewhere: in pyproject.toml, point [tool.uv.sources] {LIBRARY} at the "
        "template's git repository (git = <URL>, rev = <commit>, subdirectory = "
        f'"{LIBRARY}"), or delete that line for the published package; then `make lock`',
    )


TRACKING_CHECKS: tuple[Callable[[Tracking, Config], Check], ...] = (
    _reachable,
    _authenticated,
    _artifact_locations,
    _artifacts,
    _mlflow_run,
    _stale_runs,
)


def diagnose(project: Project, cfg: Config) -> list[Check]:
    """Every check, in order; the tracking chain stops at its first failure."""
    tracking = Tracking.of(cfg, project.root)
    results = [library_source(project.root), _settings(tracking, cfg), _tracking_uri(tracking, cfg)]
    for check in TRACKING_CHECKS:
        results.append(check(tracking, cfg))
        if not results[-1].ok:
            break
    late = (_spooled, _dvc_remote, _git_clean)
    return [*results, *(check(tracking, cfg) for check in late)]
