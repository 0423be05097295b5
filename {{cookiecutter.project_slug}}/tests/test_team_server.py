"""The team server's topology on loopback (PostgreSQL, S3 emulator, basic-auth MLflow with the
compose file's flags): training, artifacts in the bucket, load by alias without S3 credentials,
concurrent trainings, and the DVC remote on the same object store."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import mlflow
import pandas as pd
import pytest
from conftest import RAW
from team_server import Topology, available, bucket_keys, team_server

from {{ cookiecutter.package_name }} import pipeline, spool, tracking
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import compose, from_container
from {{ cookiecutter.package_name }}.data import file_md5, tracked_md5

UNAVAILABLE = available()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))]
SMALL = ["model.n_estimators=10", "model.early_stopping_rounds=0"]


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory):
    with team_server(tmp_path_factory.mktemp("team")) as running:
        yield running


@pytest.fixture
def client(topology: Topology, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A client environment with the server's credentials and no S3 credentials at all."""
    env = {
        "MLFLOW_TRACKING_URI": topology.uri,
        "MLFLOW_TRACKING_USERNAME": topology.username,
        "MLFLOW_TRACKING_PASSWORD": topology.password,
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
    }
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def train_processes(count: int, overrides: list[str], env: dict[str, str], cwd: Path) -> list:
    """`count` trainings at once; returns (exit code, output) each (output via files: pipes
    that nobody reads while waiting would block the children)."""
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}.cli", "train", *overrides]
    environment = {**os.environ, **env}
    logs = [cwd / f"train-{n}.log" for n in range(count)]
    processes = []
    for log in logs:
        with log.open("w") as output:
            processes.append(
                subprocess.Popen(
                    command, cwd=cwd, env=environment, stdout=output, stderr=subprocess.STDOUT
                )
            )
    return [(p.wait(timeout=600), log.read_text()) for p, log in zip(processes, logs, strict=True)]


def test_pipeline_through_the_team_server(workspace: Path, topology: Topology, client) -> None:
    cfg = from_container(compose(SMALL))
    summary = pipeline.run_job(cfg)

    keys = bucket_keys(topology, "mlflow")
    assert any(key.startswith("artifacts/") for key in keys), keys[:5]
    assert any("MLmodel" in key for key in keys)
    assert summary.url and summary.url.startswith(topology.uri)

    model = mlflow.pyfunc.load_model(f"models:/{cfg.registry.model_name}@challenger")
    sample = pd.read_csv(RAW).drop(columns=["target"]).head(5)
    assert len(model.predict(sample)) == 5

    search = f"{topology.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(search, timeout=10)  # no credentials
    assert refused.value.code == 401


def test_eight_concurrent_trainings(workspace: Path, topology: Topology, client) -> None:
    overrides = [*SMALL, "tracking.experiment_name=load-test"]
    results = train_processes(8, overrides, client, workspace)
    assert [code for code, _ in results] == [0] * 8, results[0][1][-3000:]
    runs = mlflow.search_runs(experiment_names=["load-test"], output_format="list")
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}


def test_runs_logging_the_same_new_dataset_at_once(
    workspace: Path, topology: Topology, client
) -> None:
    """The store checks a dataset is absent, then inserts it: simultaneous first uses collide on
    its key, and every run must still end up linked to the one dataset."""
    cfg = from_container(compose([*SMALL, "tracking.experiment_name=dataset-race"]))
    dataset = tracking.dataset(cfg, pd.read_csv(RAW).head(50), "training")
    experiment_id = mlflow.set_experiment(cfg.tracking.experiment_name).experiment_id
    start = Barrier(8)

    def log_once(n: int) -> str:
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"race-{n}") as run:
            start.wait()
            spool.deliver_dataset(run.info.run_id, dataset, "training")
            return run.info.run_id

    with ThreadPoolExecutor(8) as pool:
        run_ids = list(pool.map(log_once, range(8)))
    names = {
        tuple(d.dataset.name for d in mlflow.get_run(run_id).inputs.dataset_inputs)
        for run_id in run_ids
    }
    assert names == {(f"{cfg.data.name}-training",)}


def test_dvc_remote_on_the_object_store(workspace: Path, topology: Topology) -> None:
    env = {**os.environ, **topology.s3_env}
    dvc = [str(Path(sys.executable).with_name("dvc"))]
    raw = workspace / RAW
    expected = tracked_md5(raw)
    for command in (
        ["git", "init", "--quiet"],
        [*dvc, "init", "--quiet"],
        [*dvc, "remote", "add", "--default", "team", "s3://dvc/store"],
        [*dvc, "remote", "modify", "team", "endpointurl", topology.s3_endpoint],
        [*dvc, "add", "--quiet", RAW],
        [*dvc, "push"],
    ):
        subprocess.run(command, cwd=workspace, env=env, check=True, capture_output=True)
    assert any(key.startswith("store/") for key in bucket_keys(topology, "dvc"))
    raw.unlink()
    shutil.rmtree(workspace / ".dvc" / "cache")
    subprocess.run([*dvc, "pull"], cwd=workspace, env=env, check=True, capture_output=True)
    assert file_md5(raw) == expected


def test_four_concurrent_trainings_on_the_embedded_sqlite_store(workspace: Path) -> None:
    """The default store is one sqlite file: concurrent jobs must all finish, uncorrupted."""
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'concurrent.db'}"}
    results = train_processes(4, SMALL, env, workspace)
    assert [code for code, _ in results] == [0] * 4, [out[-2000:] for _, out in results]
    with sqlite3.connect(workspace / "concurrent.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM runs WHERE status = 'FINISHED'").fetchone() == (4,)


def test_doctor_against_the_team_server(
    workspace: Path, topology: Topology, client, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert main(["doctor"]) == 1  # the workspace is no git repository
    out = capsys.readouterr().out
    assert f"✓ tracking URI: {topology.uri} (MLFLOW_TRACKING_URI)" in out
    assert "✓ authentication: accepted" in out
    assert "✓ artifact upload: stored under mlflow-artifacts:/" in out

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✗ authentication:" in out and "MLFLOW_TRACKING_PASSWORD" in out
    assert "artifact upload" not in out
