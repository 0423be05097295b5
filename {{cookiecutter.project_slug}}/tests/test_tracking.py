"""Tracking URI: one embedded default, fast failure on an unreachable server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import FAST, background, free_port, mlflow_server
from mlflow import MlflowClient

from {{ cookiecutter.package_name }} import environment
from {{ cookiecutter.package_name }}.backends.local import LocalBackend, LocalParams
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import PROJECT_ROOT
from {{ cookiecutter.package_name }}.job import run_job
from {{ cookiecutter.package_name }}.settings import composed, load_params
from {{ cookiecutter.package_name }}.tracking.lineage import DATASET_HEAD_ROWS, dataset
from {{ cookiecutter.package_name }}.tracking.store import TrackingError, artifact_location, connect, resolve_uri

CFG = load_params(PROJECT_ROOT / "params.yaml")


def test_default_is_the_sqlite_store_at_the_project_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri, embedded = resolve_uri(CFG)
    assert embedded
    assert uri == f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
    assert artifact_location(CFG, uri) == (PROJECT_ROOT / "mlartifacts").as_uri()


def test_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_uri(CFG) == ("http://127.0.0.1:5000", False)
    assert artifact_location(CFG, "http://127.0.0.1:5000") is None


def test_unreachable_server_fails_fast_naming_the_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # a loopback port nobody listens on
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.monotonic()
    with pytest.raises(TrackingError, match=f"{uri} is unreachable"):
        connect(CFG)
    assert time.monotonic() - started < 10


def test_doctor_reports_each_problem_with_its_fix(workspace, capsys) -> None:
    """In a folder that is not a git repository and has no DVC remote."""
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✓ tracking URI: sqlite:///" in out
    assert "✓ authentication: accepted" in out
    assert "✓ artifact upload: stored under file://" in out
    assert "✗ git: not a git repository\n    fix: git init" in out
    assert "✗ DVC remote:" in out


def test_dot_env_is_read_without_overriding_the_environment(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Every command reads .env; the shell's own variables win; doctor names each origin."""
    dot_env = workspace / ".env"
    uri = f"sqlite:///{workspace / 'from-dot-env.db'}"
    dot_env.write_text(f"MLFLOW_TRACKING_URI={uri}\nMLFLOW_TRACKING_USERNAME=from-file\n")
    monkeypatch.setattr(environment, "ENV_FILE", dot_env)
    monkeypatch.setattr(environment, "_from_file", {})
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "from-shell")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    main(["doctor"])
    out = capsys.readouterr().out
    assert "MLFLOW_TRACKING_URI from .env; MLFLOW_TRACKING_USERNAME from environment" in out
    assert f"✓ tracking URI: {uri} (MLFLOW_TRACKING_URI)" in out
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "from-shell"
    assert "MLFLOW_TRACKING_PASSWORD" not in out


def test_doctor_on_an_unreachable_server(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    started = time.monotonic()
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✗ server reachable: MLflow tracking server http://127.0.0.1:9 is unreachable" in out
    assert "authentication" not in out  # it would only repeat the first failure
    assert time.monotonic() - started < 30


def test_dataset_lineage_of_a_large_split_is_cheap_and_counts_every_row() -> None:
    """The schema comes from the first rows (MLflow would check every value in Python); the
    profile still has the split's true size."""
    rows = DATASET_HEAD_ROWS * 3
    frame = pd.DataFrame(
        np.random.default_rng(0).normal(size=(rows, len(CFG.data.features))),
        columns=CFG.data.features,
    ).assign(target=1)
    started = time.monotonic()
    head, counted = LocalBackend(CFG.data, CFG.seed, LocalParams("local")).describe(
        frame, DATASET_HEAD_ROWS
    )
    described = dataset(CFG, head, counted, "training")
    assert time.monotonic() - started < 5
    assert json.loads(described.profile)["num_rows"] == rows
    schema = json.loads(described.schema)["mlflow_colspec"]
    assert [column["name"] for column in schema] == [*CFG.data.features, "target"]


@pytest.mark.e2e
def test_a_copied_project_is_relocated_and_runs(
    workspace: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch, capsys
) -> None:
    """The embedded store keeps absolute artifact locations: in a copy, doctor says so,
    `relocate` points them at the copy's own artifacts, and the copy trains and serves."""
    first = run_job(composed(FAST))
    copy = tmp_path_factory.mktemp("copied") / "project"
    shutil.copytree(workspace, copy)
    monkeypatch.chdir(copy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{copy / 'mlflow.db'}")
    before = sorted(p.name for p in (workspace / "mlartifacts").rglob("*"))

    assert main(["doctor"]) == 1
    assert "✗ artifact locations: 1 experiment(s) keep artifacts outside" in capsys.readouterr().out
    assert main(["relocate"]) == 0
    assert f"{(workspace / 'mlartifacts').as_uri()} -> {(copy / 'mlartifacts').as_uri()}" in (
        capsys.readouterr().out
    )
    main(["doctor"])
    assert "✓ artifact locations: inside the project" in capsys.readouterr().out

    second = run_job(composed(FAST))
    run = MlflowClient().get_run(second.run_id)
    assert run.info.artifact_uri.startswith((copy / "mlartifacts").as_uri())
    name = composed(FAST).registry.model_name
    served = mlflow.pyfunc.load_model(f"models:/{name}/{first.version}")  # an old version, moved
    assert served.metadata.get_input_schema() is not None
    assert sorted(p.name for p in (workspace / "mlartifacts").rglob("*")) == before


def test_relocate_refuses_a_location_it_cannot_map(workspace: Path, capsys) -> None:
    """A location outside any `mlartifacts/` folder is named, and nothing is rewritten."""
    uri = connect(CFG)
    elsewhere = (workspace.parent / "elsewhere" / "mlartifacts-old").as_uri()
    MlflowClient().create_experiment("by-hand", artifact_location=elsewhere)
    assert main(["relocate"]) == 2
    assert f"error: {elsewhere} is not under a mlartifacts/ folder" in capsys.readouterr().err
    assert MlflowClient().get_experiment_by_name("by-hand").artifact_location == elsewhere
    assert uri.startswith("sqlite:")


def test_doctor_says_where_a_bare_mlflow_run_goes(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The embedded store's experiment 0 is the project's; another exported experiment name
    would take a bare `mlflow run` elsewhere."""
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    main(["doctor"])
    assert f"✓ mlflow run: runs land in the experiment {CFG.tracking.experiment_name!r}" in (
        capsys.readouterr().out
    )
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "scratch")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✗ mlflow run: MLFLOW_EXPERIMENT_NAME is 'scratch'" in out
    assert f"export MLFLOW_EXPERIMENT_NAME={CFG.tracking.experiment_name}" in out


def test_mlflow_run_task_on_a_dead_server_fails_in_seconds(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    started = time.monotonic()
    assert main(["mlflow-run"]) == 2
    assert time.monotonic() - started < 10
    assert "http://127.0.0.1:9 is unreachable" in capsys.readouterr().err


@pytest.mark.e2e
def test_mlflow_run_task_takes_the_server_from_dot_env(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make mlflow-run` on a team server named only in .env: one FINISHED run, in the
    project's experiment (a bare `mlflow run` would read no .env and use experiment 0)."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    dot_env = workspace / ".env"
    dot_env.write_text(f"MLFLOW_TRACKING_URI={uri}\n")
    monkeypatch.setattr(environment, "ENV_FILE", dot_env)
    monkeypatch.setattr(environment, "_from_file", {})
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    fast = [f"-P{override}" for override in FAST]
    with background(mlflow_server(workspace, port), f"{uri}/health", {}, workspace):
        assert main(["mlflow-run", *fast]) == 0
        client = MlflowClient(uri)
        project = client.get_experiment_by_name(CFG.tracking.experiment_name)
        runs = client.search_runs([project.experiment_id])
        assert [run.info.status for run in runs] == ["FINISHED"]
        assert client.search_runs(["0"]) == []  # nothing in Default
        version = client.get_model_version_by_alias(CFG.registry.model_name, CFG.registry.alias)
        assert version.run_id == runs[0].info.run_id


SIGTERM_DURING_A_RUN = """
import os, signal, sys, time
from {{ cookiecutter.package_name }}.commands import run_command
from {{ cookiecutter.package_name }}.settings import load_params
from {{ cookiecutter.package_name }}.tracking.run import start_run
from {{ cookiecutter.package_name }}.tracking.store import connect

def job():
    cfg = load_params()
    with start_run(cfg, connect(cfg), "sigterm") as run:
        print(run.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)  # what `kill`, a CI cancel or a scheduler sends
        time.sleep(30)
    return 0

sys.exit(run_command(job))
"""


def test_sigterm_ends_the_run_as_killed(workspace: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SIGTERM_DURING_A_RUN], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 143, done.stderr[-3000:]
    assert "error: terminated (SIGTERM)" in done.stderr
    run_id = done.stdout.split()[-1]
    assert MlflowClient().get_run(run_id).info.status == "KILLED"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("nonsense://x", "has the unknown scheme 'nonsense'"),
        ("sqlite:///{garbage}", "cannot be opened as an MLflow store (file is not a database)"),
    ],
)
def test_a_bad_tracking_store_is_one_line_naming_it(
    workspace: Path, uri: str, message: str, monkeypatch, capsys
) -> None:
    garbage = workspace / "not-a-store.db"
    garbage.write_text("these bytes are no sqlite database\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.format(garbage=garbage))
    assert main(["gc"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and message in line
    if "sqlite" in uri:
        assert str(garbage) in line
