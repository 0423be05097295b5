"""Shared fixtures: a throw-away workspace with the raw data and its own tracking store."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.tracking._tracking_service.utils import _artifact_repos_cache

from {{ cookiecutter.package_name }}.config import PROJECT_ROOT, Config
from {{ cookiecutter.package_name }}.data import materialize
from {{ cookiecutter.package_name }}.job import run_job
from {{ cookiecutter.package_name }}.settings import composed, load_params
from {{ cookiecutter.package_name }}.tracking import journal
from {{ cookiecutter.package_name }}.tracking.store import relocate

RAW = "data/raw/breast_cancer.csv"
{%- if cookiecutter.model_library == "xgboost" %}
# A quick model (and the per-iteration points it logs); one that passes validation, one that
# must not.
FAST_PARAMS: dict[str, object] = {"n_estimators": 25, "early_stopping_rounds": 0}
FAST_ROUNDS: int | None = 25
GOOD = ["model.n_estimators=80", "model.learning_rate=0.2", "model.early_stopping_rounds=0"]
POOR = ["model.n_estimators=2", "model.max_depth=1", "model.early_stopping_rounds=0"]
{%- else %}
# A quick model (and the per-iteration points it logs: none); one that passes validation, one
# that must not (so regularised that it predicts the majority class).
FAST_PARAMS: dict[str, object] = {}
FAST_ROUNDS: int | None = None
GOOD = ["model.C=1.0"]
POOR = ["model.C=0.00001"]
{%- endif %}
FAST = [f"model.{key}={value}" for key, value in FAST_PARAMS.items()]


def _isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Telemetry off, no inherited run; `connect` sets these defaults in the environment:
    scope them."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


def _forget_process_state() -> None:
    """`connect` sets MLflow's process-wide URI, which would win over the next test's
    MLFLOW_TRACKING_URI; MLflow caches artifact repositories by run id alone, and copied
    stores (`trained`) share run ids."""
    mlflow.set_tracking_uri(None)
    _artifact_repos_cache.clear()


@pytest.fixture(autouse=True)
def _isolated_mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test's tracking URI comes from its own environment."""
    _isolate(monkeypatch)
    yield
    _forget_process_state()


@functools.cache
def _migrated_store() -> bytes:
    """An MLflow sqlite store at the current schema and without experiments. Migrating a new
    database takes ~2 s; copying this one and opening it, ~60 ms."""
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "mlflow.db"
        SqlAlchemyStore(f"sqlite:///{database}", Path(folder).as_uri()).engine.dispose()
        connection = sqlite3.connect(database)
        with connection:
            connection.execute("DELETE FROM experiments")
        connection.close()
        return database.read_bytes()


def new_store(database: Path, artifacts: str | None = None) -> str:
    """A store at `database` as MLflow makes a new one, its Default experiment (id 0) under
    `artifacts` (a URI), created now, or else by whoever opens it first; returns its URI."""
    database.write_bytes(_migrated_store())
    uri = f"sqlite:///{database}"
    if artifacts is not None:
        SqlAlchemyStore(uri, artifacts).engine.dispose()
    return uri


def _fill(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """params.yaml, the raw data and its .dvc file in `folder`, the cwd; tracking into a new
    store there, its experiment 0 under `tracking.artifact_dir` beside it (the first `connect`
    makes it the project's, as `make setup` does)."""
    materialize(folder / RAW)
    shutil.copy(PROJECT_ROOT / f"{RAW}.dvc", folder / f"{RAW}.dvc")
    shutil.copy(PROJECT_ROOT / "params.yaml", folder / "params.yaml")
    monkeypatch.chdir(folder)
    artifacts = folder / load_params().tracking.artifact_dir
    monkeypatch.setenv("MLFLOW_TRACKING_URI", new_store(folder / "mlflow.db", artifacts.as_uri()))
    return folder


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cwd holding params.yaml, the raw data and its .dvc file; tracking into tmp_path."""
    return _fill(tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def _trained_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace after one GOOD training job, made once per test process. The folder is
    renamed afterwards: a location that a copy's `relocate` missed points nowhere, and fails."""
    built, saved = tmp_path_factory.mktemp("training"), dict(os.environ)
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _isolate(monkeypatch)
            _fill(built, monkeypatch)
            run_job(composed(GOOD))
    finally:
        _forget_process_state()
        os.environ.clear()
        os.environ.update(saved)  # `connect`'s defaults too
    return built.rename(built.with_name(f"trained-{built.name}"))


@pytest.fixture
def trained(workspace: Path, _trained_once: Path) -> str:
    """`workspace` whose store holds one GOOD training job, its model registered as
    @challenger; returns that version. A copy of the job trained once per test process, its
    artifact locations moved here by the project's own `relocate` (training takes ~2.5 s)."""
    cfg = load_params()
    shutil.copyfile(_trained_once / "mlflow.db", workspace / "mlflow.db")
    artifacts = cfg.tracking.artifact_dir
    shutil.copytree(_trained_once / artifacts, workspace / artifacts)
    moved = relocate(cfg, os.environ["MLFLOW_TRACKING_URI"])
    assert len(moved) == 1, moved  # the one old artifact folder
    version = MlflowClient().get_model_version_by_alias(cfg.registry.model_name, "challenger")
    return str(version.version)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mlflow_server(folder: Path, port: int) -> list[str]:
    """`mlflow server` on loopback with a sqlite store (new, unless `folder` holds one) and
    artifacts in `folder`: one worker and no job runner (MLflow's GenAI jobs), which halves
    its start-up."""
    store = folder / "server.db"
    if not store.exists():
        new_store(store)
    return [
        "env", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{store}",
        "--artifacts-destination", str(folder / "server-artifacts"), "--workers", "1",
    ]  # fmt: skip


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    """Poll `url` until it answers 200; fail with the server's log if it dies or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited:\n{log.read_text()[-5000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s:\n{log.read_text()[-5000:]}")


@contextmanager
def background(
    command: list[str], url: str, env: dict[str, str], cwd: Path
) -> Iterator[subprocess.Popen]:
    """Start a server on loopback, wait until `url` answers, stop it (its process group).

    The venv's bin folder goes first on PATH: MLflow's servers exec `uvicorn` by name.
    The server logs to a file: a pipe nobody reads fills up and blocks a busy server.
    """
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    log = Path(tempfile.mkstemp(prefix="server-", suffix=".log")[1])
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, "PATH": path, **env}, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_http(url, process, log)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.unlink(missing_ok=True)


def assert_complete_run(run_id: str, cfg: Config, rounds: int | None) -> None:
    """Finished, named, with params, lineage tags, metrics, history, plots and datasets."""
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name.startswith(f"{cfg.project}-{cfg.model.kind}-")
    assert run.data.params["data.target"] == "target"
    for key in ("git.commit", "git.dirty", "data.dvc_md5", "team", "dataset_version"):
        assert key in run.data.tags
    assert run.data.tags["data.dvc_md5"] != "untracked"
    assert {"test_auc", "test_f1", "valid_auc"} <= run.data.metrics.keys()
    assert run.data.metrics["test_auc"] > 0.9
    if rounds:
        history = client.get_metric_history(run_id, "iter_valid_logloss")
        assert [m.step for m in history] == list(range(rounds))
    artifacts = {a.path for a in client.list_artifacts(run_id, "plots")}
    for name in ("confusion_matrix", "roc_curve", "precision_recall_curve", "feature_importance"):
        assert f"plots/{name}.png" in artifacts
    assert {"plots/roc.json", "plots/precision_recall.json"} <= artifacts
    assert {i.dataset.name for i in run.inputs.dataset_inputs} >= {"breast_cancer-training"}
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == cfg.tracking.experiment_name


def kill(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()


@pytest.fixture
def spooling(workspace: Path) -> Path:
    """params.yaml with a small model and the spool inside the workspace; returns the spool."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["model"].update(FAST_PARAMS)
    params["tracking"]["spool_dir"] = str(workspace / "spool")
    params["tracking"]["on_server_loss"] = "spool"  # whether or not CI is set
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return workspace / "spool"


def assert_synced(run_id: str, spool_dir: Path) -> None:
    """One complete run holding the spooled calls, a registered @challenger that loads."""
    cfg = load_params()
    assert_complete_run(run_id, cfg, FAST_ROUNDS)
    assert len(MlflowClient().get_metric_history(run_id, "test_auc")) == 1
    client = MlflowClient()
    (run,) = client.search_runs([client.get_run(run_id).info.experiment_id])
    assert run.info.run_id == run_id
    version = client.get_model_version_by_alias(cfg.registry.model_name, cfg.registry.alias)
    assert version.run_id == run_id
    model = mlflow.pyfunc.load_model(f"models:/{cfg.registry.model_name}@{cfg.registry.alias}")
    sample = pd.read_csv(RAW).drop(columns=[cfg.data.target]).head(3)
    assert set(model.predict(sample)) <= {0, 1}
    assert journal.pending(cfg) == []
    assert not any(spool_dir.iterdir())
