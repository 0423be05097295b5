"""Shared fixtures: the demo project, a throw-away workspace with its raw data and its own
tracking store; servers on loopback come from `mlrig.testing`."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from demo.project import PROJECT
from mlflow import MlflowClient
from mlflow.tracking._tracking_service.utils import _artifact_repos_cache

import mlrig
from mlrig import Config, Project
from mlrig.job import run_job
from mlrig.testing import forget_connection, new_store
from mlrig.tracking import journal
from mlrig.tracking.store import Tracking

TESTS = Path(__file__).resolve().parent
RAW = "data/raw/blobs.csv"
# A model that passes validation, one that must not (so regularised that its probabilities
# stay near one half).
GOOD = ["model.C=1.0"]
POOR = ["model.C=0.00001"]
# A quick boosted model and the per-iteration points it logs.
BOOSTED = ["model=boosted"]
BOOSTED_ROUNDS = 25


def pythonpath() -> dict[str, str]:
    """What a subprocess needs to import the demo project."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}


def _isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Telemetry off, no inherited run; `Tracking.open` sets these defaults in the
    environment: scope them."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # mlflow.set_experiment sets it
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setenv("PYTHONPATH", pythonpath()["PYTHONPATH"])


def _forget_process_state() -> None:
    """`Tracking.open` sets MLflow's process-wide URIs, which would win over the next test's
    MLFLOW_TRACKING_URI; MLflow caches artifact repositories by run id alone, and copied
    stores (`trained`) share run ids."""
    forget_connection()
    _artifact_repos_cache.clear()


@pytest.fixture(autouse=True)
def _isolated_mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test's tracking URI comes from its own environment."""
    _isolate(monkeypatch)
    yield
    _forget_process_state()


@pytest.fixture
def project() -> Project:
    return PROJECT


@pytest.fixture(autouse=True, scope="session")
def _demo_root_untouched() -> Iterator[None]:
    """Tests work in their own folders: nothing lands in the demo project's root (its
    default store, its spool), where a later test would find it."""
    yield
    stray = [name for name in ("mlflow.db", "mlartifacts", ".mlflow-spool", "optuna.db")
             if (PROJECT.root / name).exists()]  # fmt: skip
    assert stray == [], f"written into {PROJECT.root}"


def produce_raw(folder: Path) -> Path:
    """The demo's tracked raw data in `folder`, with its .dvc pointer."""
    cfg = PROJECT.load_params(PROJECT.root / "params.yaml")
    raw = folder / RAW
    PROJECT.producer(cfg.data.producer).produce(raw, cfg.data.producer, cfg.data)
    shutil.copy(PROJECT.root / f"{RAW}.dvc", folder / f"{RAW}.dvc")
    return raw


def _fill(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """params.yaml, the raw data and its .dvc file in `folder`, the cwd; tracking into a new
    store there, its experiment 0 under `tracking.artifact_dir` beside it (the first
    connection makes it the project's, as `make setup` does)."""
    produce_raw(folder)
    shutil.copy(PROJECT.root / "params.yaml", folder / "params.yaml")
    monkeypatch.chdir(folder)
    artifacts = folder / PROJECT.load_params().tracking.artifact_dir
    monkeypatch.setenv("MLFLOW_TRACKING_URI", new_store(folder / "mlflow.db", artifacts.as_uri()))
    return folder


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cwd holding params.yaml, the raw data and its .dvc file; tracking into tmp_path."""
    return _fill(tmp_path, monkeypatch)


def tracking(cfg: Config | None = None) -> Tracking:
    """The connection the library makes for the workspace's configuration."""
    return Tracking.connect(cfg or PROJECT.load_params(), PROJECT.root)


@pytest.fixture(scope="session")
def _trained_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace after one GOOD training job, made once per test process. The folder is
    renamed afterwards: a location that a copy's `relocate` missed points nowhere, and fails."""
    built, saved = tmp_path_factory.mktemp("training"), dict(os.environ)
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _isolate(monkeypatch)
            _fill(built, monkeypatch)
            assert mlrig.main(PROJECT, ["init-tracking"]) == 0  # `make setup`: the lock too
            run_job(PROJECT, PROJECT.composed(GOOD))
    finally:
        _forget_process_state()
        os.environ.clear()
        os.environ.update(saved)  # `Tracking.open`'s defaults too
    return built.rename(built.with_name(f"trained-{built.name}"))


@pytest.fixture
def trained(workspace: Path, _trained_once: Path) -> str:
    """`workspace` whose store holds one GOOD training job, its model registered as
    @challenger; returns that version. A copy of the job trained once per test process, its
    artifact locations moved here by the library's own `relocate`."""
    cfg = PROJECT.load_params()
    shutil.copyfile(_trained_once / "mlflow.db", workspace / "mlflow.db")
    artifacts = cfg.tracking.artifact_dir
    shutil.copytree(_trained_once / artifacts, workspace / artifacts)
    moved = Tracking.of(cfg, PROJECT.root).relocate()
    assert len(moved) == 1, moved  # the one old artifact folder
    version = MlflowClient().get_model_version_by_alias(cfg.registry.model_name, "challenger")
    return str(version.version)


def assert_complete_run(run_id: str, cfg: Config, rounds: int | None = None) -> None:
    """Finished, named, with params, lineage tags, metrics, history, plots and datasets."""
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name.startswith(f"{cfg.project}-{cfg.model.kind}-")
    assert run.data.params["data.target"] == "target"
    for key in ("git.commit", "git.dirty", "data.dvc_md5", "team", "model.kind"):
        assert key in run.data.tags
    assert run.data.tags["mlrig.version"] == mlrig.__version__
    assert run.data.tags["data.dvc_md5"] != "untracked"
    assert {"test_auc", "test_f1", "valid_auc"} <= run.data.metrics.keys()
    assert run.data.metrics["test_auc"] > 0.8
    if rounds:
        history = client.get_metric_history(run_id, "iter_valid_logloss")
        assert [m.step for m in history] == list(range(rounds))
    artifacts = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"plots/roc_curve.png", "plots/roc.json", "plots/importance.json"} <= artifacts
    assert {i.dataset.name for i in run.inputs.dataset_inputs} >= {"blobs-training"}
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == cfg.tracking.experiment_name


@pytest.fixture
def spooling(workspace: Path) -> Path:
    """params.yaml with the spool inside the workspace; returns the spool."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["tracking"]["spool_dir"] = str(workspace / "spool")
    params["tracking"]["on_server_loss"] = "spool"  # whether or not CI is set
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return workspace / "spool"


def assert_synced(run_id: str, spool_dir: Path) -> None:
    """One complete run holding the spooled calls, a registered @challenger that loads."""
    cfg = PROJECT.load_params()
    assert_complete_run(run_id, cfg)
    client = MlflowClient()
    assert len(client.get_metric_history(run_id, "test_auc")) == 1
    (run,) = client.search_runs([client.get_run(run_id).info.experiment_id])
    assert run.info.run_id == run_id
    version = client.get_model_version_by_alias(cfg.registry.model_name, cfg.registry.alias)
    assert version.run_id == run_id
    model = mlflow.pyfunc.load_model(f"models:/{cfg.registry.model_name}@{cfg.registry.alias}")
    sample = pd.read_csv(RAW).drop(columns=[cfg.data.target]).head(3)
    assert set(model.predict(sample)) <= {0, 1}
    assert journal.pending(Tracking.of(cfg, PROJECT.root)) == []
    assert not any(spool_dir.iterdir())


def with_root(root: Path) -> Project:
    """The demo project at another root (its conf/ copied there)."""
    shutil.copytree(PROJECT.conf_dir, root / "conf", dirs_exist_ok=True)
    return dataclasses.replace(PROJECT, root=root)
