"""The team server's topology on loopback (PostgreSQL, S3 emulator, basic-auth MLflow with
proxied artifacts, `mlrig.testing`): training, artifacts in the bucket, load by alias without
S3 credentials, concurrent trainings, roles, a server killed mid-run, and the DVC remote on
the same object store."""

from __future__ import annotations

import json
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
import yaml
from botocore.exceptions import ClientError
from conftest import BOOSTED, RAW, assert_synced
from demo.project import PROJECT
from mlflow import MlflowClient
from mlflow.server import get_app_client
from test_untrusted_models import pickled_sklearn, register

import mlrig
from mlrig import access, registry
from mlrig.backends.local import LocalBackend
from mlrig.data import file_md5, tracked_md5
from mlrig.job import run_job
from mlrig.testing import Topology, bucket_keys, kill, team_server, topology_unavailable
from mlrig.tracking import journal
from mlrig.tracking.delivery import deliver_dataset
from mlrig.tracking.lineage import dataset

UNAVAILABLE = topology_unavailable()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE)),
]


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
    command = [sys.executable, "-m", "demo.cli", "train", *overrides]
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
    cfg = PROJECT.composed(BOOSTED)
    summary = run_job(PROJECT, cfg)

    keys = bucket_keys(topology.s3_endpoint, "mlflow", topology.server_s3_env)
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
    overrides = [*BOOSTED, "tracking.experiment_name=load-test"]
    results = train_processes(8, overrides, client, workspace)
    assert [code for code, _ in results] == [0] * 8, results[0][1][-3000:]
    runs = mlflow.search_runs(experiment_names=["load-test"], output_format="list")
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.info.run_name for r in runs}) == 8, [r.info.run_name for r in runs]


def test_runs_logging_the_same_new_dataset_at_once(
    workspace: Path, topology: Topology, client
) -> None:
    """The store checks a dataset is absent, then inserts it: simultaneous first uses collide on
    its key, and every run must still end up linked to the one dataset."""
    cfg = PROJECT.composed([*BOOSTED, "tracking.experiment_name=dataset-race"])
    training = dataset(cfg, pd.read_csv(RAW).head(50), 50, "training")
    experiment_id = mlflow.set_experiment(cfg.tracking.experiment_name).experiment_id
    start = Barrier(8)

    def log_once(n: int) -> str:
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"race-{n}") as run:
            start.wait()
            deliver_dataset(MlflowClient(), run.info.run_id, training, "training")
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
    assert any(
        key.startswith("store/")
        for key in bucket_keys(topology.s3_endpoint, "dvc", topology.s3_env)
    )
    for identity, bucket in ((topology.s3_env, "mlflow"), (topology.server_s3_env, "dvc")):
        with pytest.raises(ClientError, match="AccessDenied"):  # each identity: its bucket only
            bucket_keys(topology.s3_endpoint, bucket, identity)
    raw.unlink()
    shutil.rmtree(workspace / ".dvc" / "cache")
    subprocess.run([*dvc, "pull"], cwd=workspace, env=env, check=True, capture_output=True)
    assert file_md5(raw) == expected


def test_four_concurrent_trainings_on_the_embedded_sqlite_store(workspace: Path) -> None:
    """The default store is one sqlite file: concurrent jobs must all finish, uncorrupted."""
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'concurrent.db'}"}
    results = train_processes(4, BOOSTED, env, workspace)
    assert [code for code, _ in results] == [0] * 4, [out[-2000:] for _, out in results]
    with sqlite3.connect(workspace / "concurrent.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM runs WHERE status = 'FINISHED'").fetchone() == (4,)


def test_doctor_against_the_team_server(
    workspace: Path, topology: Topology, client, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert mlrig.main(PROJECT, ["doctor"]) == 1  # the workspace is no git repository
    out = capsys.readouterr().out
    assert f"✓ tracking URI: {topology.uri} (MLFLOW_TRACKING_URI)" in out
    assert "✓ authentication: accepted" in out
    assert "✓ artifact upload: stored under mlflow-artifacts:/" in out

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password")
    assert mlrig.main(PROJECT, ["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✗ authentication:" in out and "MLFLOW_TRACKING_PASSWORD" in out
    assert "artifact upload" not in out


def test_team_roles_keep_promotion_to_promoters(
    workspace: Path, topology: Topology, client, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """An administrator gives roles (`access`). A trainer trains, registers, and registers a
    crafted model too; a reader validates but can neither promote nor block promotions; the
    promoter promotes, and never runs the crafted model's code."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["registry"]["model_name"] = "team-roles"
    params["tracking"]["experiment_name"] = "team-roles"
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    roles = {"alice": "trainer", "ci-reader": "reader", "ci-promoter": "promoter"}
    for user, role in roles.items():
        monkeypatch.setenv("ACCESS_PASSWORD", f"{user}-password")
        assert mlrig.main(PROJECT, ["access", "--user", user, "--role", role]) == 0, (
            capsys.readouterr()
        )
    capsys.readouterr()
    assert mlrig.main(PROJECT, ["access", "--user", "ci-promoter", "--role", "promoter"]) == 0
    assert "user ci-promoter exists: its password is unchanged" in capsys.readouterr().out
    monkeypatch.delenv("ACCESS_PASSWORD")

    def as_user(user: str) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", f"{user}-password")

    as_user("alice")
    cfg = PROJECT.load_params()
    trained = run_job(PROJECT, cfg).version
    marker, crafted = workspace / "payload-ran", workspace / "crafted"
    crafted.mkdir()
    pickled_sklearn(crafted, cfg, marker)
    malicious = register(cfg, crafted)
    assert mlrig.main(PROJECT, ["promote", "--version", trained]) == 2
    assert "you may not promote" in capsys.readouterr().err

    as_user("ci-reader")
    assert mlrig.main(PROJECT, ["validate", "--version", trained]) == 0  # reading is all it takes
    assert mlrig.main(PROJECT, ["promote", "--version", trained]) == 2
    assert "you may not promote" in capsys.readouterr().err
    lock = registry.lock_name(cfg.registry.model_name)
    with pytest.raises(mlflow.exceptions.MlflowException, match=r"PERMISSION_DENIED|403"):
        MlflowClient().create_model_version(lock, registry.LOCK_SOURCE)
    with pytest.raises(mlflow.exceptions.MlflowException, match=r"PERMISSION_DENIED|403"):
        MlflowClient().delete_registered_model(lock)

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    assert mlrig.main(PROJECT, ["promote", "--version", trained]) == 2
    assert "did not accept your credentials" in capsys.readouterr().err

    as_user("ci-promoter")
    assert mlrig.main(PROJECT, ["promote", "--version", malicious]) == 2
    assert "only skops loads without running code" in capsys.readouterr().err
    assert not marker.exists()
    assert mlrig.main(PROJECT, ["promote", "--version", trained]) == 0
    aliases = MlflowClient().get_registered_model(cfg.registry.model_name).aliases
    assert int(aliases["champion"]) == int(trained)


def test_a_squatted_promotion_lock_is_refused(
    workspace: Path, topology: Topology, client, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A user who may only read creates the model and its promotion lock before the
    administrator's first `access` (creating a model makes one its manager, so they look like
    a promoter): `promote` never creates the lock, and `access` refuses to adopt one it did
    not create, naming the user, changing nothing; once the administrator deletes it, `access`
    creates it with its witness, and keeps it on the next run."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["registry"]["model_name"] = "squatted"
    params["tracking"]["experiment_name"] = "squatted"
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    lock = registry.lock_name("squatted")
    admin = get_app_client("basic-auth", tracking_uri=topology.uri)
    admin.create_user("mallory", "mallory-password")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "mallory")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "mallory-password")
    assert mlrig.main(PROJECT, ["promote", "--version", "1"]) == 2
    assert "you may not promote squatted" in capsys.readouterr().err
    with pytest.raises(mlflow.exceptions.MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        MlflowClient().get_registered_model(lock)  # the promotion did not create it
    MlflowClient().create_registered_model("squatted")  # mallory manages both
    created = MlflowClient().create_registered_model(lock).creation_timestamp
    with pytest.raises(mlflow.exceptions.MlflowException, match="403"):  # only administrators
        admin.create_user(access.witness(lock, created), "mallory-witness")

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", topology.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", topology.password)
    # a witness names one creation of the lock: that of another proves nothing
    admin.create_user(access.witness(lock, 0), "another-lock-witness")
    monkeypatch.setenv("ACCESS_PASSWORD", "promoter-password")
    assert mlrig.main(PROJECT, ["access", "--user", "squat-promoter", "--role", "promoter"]) == 2
    refusal = capsys.readouterr().err
    assert f"the promotion lock {lock!r} was not created by `access`" in refusal
    assert "held by mallory (MANAGE)" in refusal
    assert "delete the registered model" in refusal
    with pytest.raises(mlflow.exceptions.MlflowException):
        admin.get_user("squat-promoter")  # nothing was changed
    MlflowClient().delete_registered_model(lock)
    assert mlrig.main(PROJECT, ["access", "--user", "squat-promoter", "--role", "promoter"]) == 0
    assert f"created the promotion lock {lock}" in capsys.readouterr().out
    assert mlrig.main(PROJECT, ["access", "--user", "squat-promoter", "--role", "promoter"]) == 0
    assert "created" not in capsys.readouterr().out


def test_team_server_killed_right_after_training(
    spooling: Path, topology: Topology, client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL + S3 + basic auth: the server dies when training ends, before the history,
    the model and everything after it reach it; the job still finishes, and `sync` replays the
    run once the server is back. (The last test of this file: it leaves the module's server
    stopped.)"""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a dead server: no waiting
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["tracking"]["experiment_name"] = "killed"  # the server's store has other runs
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    trained = LocalBackend.train

    def train_then_kill_the_server(*args: object) -> object:
        result = trained(*args)
        kill(topology.server)
        return result

    monkeypatch.setattr(LocalBackend, "train", train_then_kill_the_server)
    summary = run_job(PROJECT, PROJECT.load_params())
    assert summary.version is None
    entries = (spooling / summary.run_id / journal.JOURNAL).read_text()
    ops = [json.loads(line)["op"] for line in entries.splitlines()]
    assert ops[0] == "run" and ops[-1] == "end"
    assert ops.count("model_metrics") == 1  # the report's (a linear model: no history)
    assert {"model", "figure", "table", "register"} <= set(ops)
    with topology.relaunch():
        assert mlrig.main(PROJECT, ["sync"]) == 0
        assert_synced(summary.run_id, spooling)
