"""MLflow tracking: one URI, a fast preflight, one run per job, batched logging, lineage tags."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import urllib.error
import urllib.request
import warnings
from pathlib import Path
{%- if cookiecutter.model_library == "xgboost" %}
from typing import Any
{%- endif %}
from urllib.parse import urlparse

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Dataset

from .config import PROJECT_ROOT, Config
from .data import tracked_md5

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT_ID = "0"
DATASET_SAMPLE_ROWS = 10_000


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message says what to do."""


# Where `make ui` serves the embedded store.
LOCAL_UI = "http://127.0.0.1:5000"


def resolve_uri(cfg: Config) -> tuple[str, bool]:
    """MLFLOW_TRACKING_URI when set, else the embedded sqlite store at the project root."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, False
    return f"sqlite:///{PROJECT_ROOT / cfg.tracking.default_store}", True


def sqlite_path(uri: str) -> Path:
    """The database file of a `sqlite:///` URI (absolute, or relative to the cwd)."""
    return Path(uri.removeprefix("sqlite:///")).resolve()


def preflight(uri: str, timeout_s: float) -> None:
    """Fail fast, naming the URI, when the tracking store cannot be reached."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        health = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(health, timeout=timeout_s):  # noqa: S310 (http/https only)
                return
        except urllib.error.HTTPError as err:
            if err.code < 500:  # reachable; authentication is checked by the first real call
                return
            reason = f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            reason = str(getattr(err, "reason", err))
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable ({reason}). Start it, fix "
            "MLFLOW_TRACKING_URI, or unset it to use the embedded sqlite store."
        )
    if scheme == "sqlite":
        directory = sqlite_path(uri).parent
        if not directory.is_dir() or not os.access(directory, os.W_OK):
            raise TrackingError(f"sqlite store {uri}: {directory} is not a writable folder.")


def connect(cfg: Config) -> str:
    """Point MLflow (and child processes) at the resolved URI, after a preflight."""
    uri, embedded = resolve_uri(cfg)
    origin = (
        "embedded default; set MLFLOW_TRACKING_URI for a team server"
        if embedded
        else "from MLFLOW_TRACKING_URI"
    )
    log.info("MLflow tracking URI: %s (%s)", uri, origin)
    preflight(uri, cfg.tracking.preflight_timeout_s)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    # MLflow's default retries take ~4 minutes to give up on a dead server; after these
    # (unless set in the environment) a run spools instead (see spool.py).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(cfg.tracking.http_max_retries))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", str(cfg.tracking.http_backoff_s))
    mlflow.set_tracking_uri(uri)
    if urlparse(uri).scheme == "sqlite":
        _initialise_sqlite(uri)
    return uri


def _initialise_sqlite(uri: str) -> None:
    """Create or migrate a sqlite store in one process at a time.

    Concurrent jobs on a fresh store would otherwise race to create MLflow's tables
    ("duplicate column name"); an exclusive lock file beside the database serialises that.
    """
    import fcntl

    database = sqlite_path(uri)
    with database.with_name(f"{database.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            MlflowClient().search_experiments(max_results=1)  # opens the store: tables, migrations
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def artifact_location(cfg: Config, uri: str) -> str | None:
    """Artifacts of a sqlite store live beside the database (never in a cwd `mlruns/`);
    a server decides for itself (None)."""
    if urlparse(uri).scheme != "sqlite":
        return None
    return (sqlite_path(uri).parent / cfg.tracking.artifact_dir).as_uri()


def ensure_experiment(cfg: Config, uri: str) -> str:
    """Create the project's experiment if needed (artifacts beside a sqlite store)."""
    client = MlflowClient()
    name = cfg.tracking.experiment_name
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location(cfg, uri))
        except mlflow.exceptions.MlflowException:  # created concurrently by another job
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        raise TrackingError(
            f"experiment {name!r} is deleted: restore it with "
            f"`mlflow experiments restore --experiment-id {experiment.experiment_id}`."
        )
    return experiment.experiment_id


def next_run_name(cfg: Config, experiment_id: str, label: str | None = None) -> str:
    """`{project}-{label}-{n}` (label: the model kind by default), n one more than the highest
    existing in the experiment."""
    prefix = f"{cfg.project}-{label or cfg.model.kind}"
    runs = MlflowClient().search_runs(
        [experiment_id], filter_string=f"attributes.run_name LIKE '{prefix}-%'", max_results=5000
    )
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)$")
    numbers = [int(m[1]) for r in runs if (m := pattern.match(r.info.run_name or ""))]
    return f"{prefix}-{max(numbers, default=0) + 1}"


def check_attached(cfg: Config, run_id: str, uri: str) -> None:
    run = MlflowClient().get_run(run_id)
    name = cfg.tracking.experiment_name
    if run.info.experiment_id == DEFAULT_EXPERIMENT_ID:
        raise TrackingError(
            "`mlflow run` created this run in MLflow's Default experiment. Re-run with "
            f"`--experiment-name {name}` (or export MLFLOW_EXPERIMENT_NAME={name})."
        )
    store = artifact_location(cfg, uri)
    if store and not run.info.artifact_uri.startswith(store):
        raise TrackingError(
            f"run artifacts would go to {run.info.artifact_uri}, outside the project's artifact "
            f"store {store}: the experiment was created by `mlflow run`. Create experiments with "
            "`make setup` first, or delete this one."
        )


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=Path.cwd()
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def git_status() -> str | None:
    """`git status --porcelain` of tracked files (empty when clean; None outside a repo)."""
    return _git("status", "--porcelain", "--untracked-files=no")


def lineage_tags(cfg: Config) -> dict[str, str]:
    """Where this run came from: code version, data version, DVC experiment, team tags."""
    tags = {key: str(value) for key, value in cfg.tracking.tags.items() if value is not None}
    sha = _git("rev-parse", "HEAD")
    tags["git.commit"] = sha or "unknown"
    status = git_status()
    tags["git.dirty"] = "unknown" if status is None else str(bool(status)).lower()
    tags["data.dvc_md5"] = tracked_md5(cfg.data.raw_path) or "untracked"
    tags["data.path"] = cfg.data.raw_path
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc.exp_name"] = os.environ["DVC_EXP_NAME"]
    tags["model.kind"] = cfg.model.kind
    return tags
{%- if cookiecutter.model_library == "xgboost" %}


def dataset(cfg: Config, frame: Any, context: str) -> Dataset:
{%- else %}


def dataset(cfg: Config, frame: pd.DataFrame, context: str) -> Dataset:
{%- endif %}
    """Dataset lineage for a split{{ " (pandas or Dask)" if cookiecutter.model_library == "xgboost" }}: source path, DVC md5 as digest, the true
    row count as profile, and the schema of the first rows.

    MLflow infers a schema by checking every value in Python (~15 s for 300k rows x 20); the
    first DATASET_SAMPLE_ROWS rows give the same column types at a fixed cost.
    """
{%- if cookiecutter.model_library == "xgboost" %}
    if isinstance(frame, pd.DataFrame):
        sample, rows = frame.head(DATASET_SAMPLE_ROWS), len(frame)
    else:  # Dask: one pass for the count, the first partition for the sample
        sample = frame.partitions[0].compute().head(DATASET_SAMPLE_ROWS)
        rows = int(frame.shape[0].compute())
{%- else %}
    sample, rows = frame.head(DATASET_SAMPLE_ROWS), len(frame)
{%- endif %}
    with warnings.catch_warnings():  # MLflow registers two equivalent local-file sources
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
        source = mlflow.data.from_pandas(
            sample,
            source=Path(cfg.data.raw_path).resolve().as_uri(),
            targets=cfg.data.target,
            name=f"{cfg.data.name}-{context}",
            digest=(tracked_md5(cfg.data.raw_path) or "")[:8] or None,
        )
    described = source.to_dict()
    described["profile"] = json.dumps({"num_rows": rows, "num_elements": rows * sample.shape[1]})
    return Dataset(**described)


def run_url(run: mlflow.entities.Run) -> str | None:
    """The run's page in the MLflow UI: the server's, or `make ui`'s for a sqlite store."""
    uri = mlflow.get_tracking_uri()
    scheme = urlparse(uri).scheme
    if scheme not in ("http", "https", "sqlite"):
        return None
    base = LOCAL_UI if scheme == "sqlite" else uri.rstrip("/")
    return f"{base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
