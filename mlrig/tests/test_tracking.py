"""Tracking: one connection (MLFLOW_TRACKING_URI, else one embedded default), fast failure on
an unreachable server, `.env`, the doctor, lineage, a copied project relocated."""

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
from conftest import tracking, with_root
from mlflow import MlflowClient

import mlrig
from mlrig import Project, environment
from mlrig.backends.local import LocalBackend, LocalParams
from mlrig.job import run_job
from mlrig.testing import background, free_port, mlflow_server
from mlrig.tracking.lineage import DATASET_HEAD_ROWS, dataset
from mlrig.tracking.store import Tracking, TrackingError


def test_default_is_the_sqlite_store_at_the_project_root(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking = Tracking.of(project.load_params(project.root / "params.yaml"), project.root)
    assert tracking.embedded
    assert tracking.uri == f"sqlite:///{project.root / 'mlflow.db'}"
    assert tracking.artifact_location() == (project.root / "mlartifacts").as_uri()


def test_environment_wins(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    tracking = Tracking.of(project.load_params(project.root / "params.yaml"), project.root)
    assert (tracking.uri, tracking.embedded) == ("http://127.0.0.1:5000", False)
    assert tracking.artifact_location() is None


def test_connecting_writes_no_tracking_uri_into_the_environment(
    project: Project, workspace: Path
) -> None:
    """The connection is the one owner of the URI: child processes get it passed, the
    environment is not a side channel."""
    del os.environ["MLFLOW_TRACKING_URI"]
    project = with_root(workspace)
    tracking = Tracking.connect(project.load_params(), project.root)
    assert (tracking.uri, tracking.embedded) == (f"sqlite:///{workspace / 'mlflow.db'}", True)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert tracking.client.get_experiment_by_name("demo") is not None
    assert Tracking.of(project.load_params(), project.root).embedded  # still the default


def test_models_are_registered_in_the_tracking_store(
    project: Project, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An MLFLOW_REGISTRY_URI left in the environment does not send MLflow's fluent
    registrations elsewhere; the environment keeps its value."""
    elsewhere = f"sqlite:///{workspace / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", elsewhere)
    tracking = Tracking.connect(project.load_params(), project.root)
    assert mlflow.get_registry_uri() == tracking.uri != elsewhere
    assert os.environ["MLFLOW_REGISTRY_URI"] == elsewhere


def test_a_tracked_job_serialises_its_model_once(
    project: Project, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Online, the model goes straight into the run: no copy saved beside it, one signature
    inferred; the registered version loads."""
    from mlrig.models.base import ModelSpec

    inferred = []
    signature = ModelSpec.signature

    def counted(spec: ModelSpec, *args: object) -> object:
        inferred.append(spec)
        return signature(spec, *args)

    monkeypatch.setattr(ModelSpec, "signature", counted)
    monkeypatch.setattr(ModelSpec, "save", lambda *args: pytest.fail("a copy saved to disk"))
    summary = run_job(project, project.composed(["model.C=1.0"]))
    assert len(inferred) == 1
    assert summary.version is not None
    features = project.load_params().data.features
    model = mlrig.load_model(project, summary.version)  # the native loader
    assert model.predict(pd.DataFrame([[0.0] * len(features)], columns=features)).shape == (1,)


def test_unreachable_server_fails_fast_naming_the_uri(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # a loopback port nobody listens on
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.monotonic()
    with pytest.raises(TrackingError, match=f"{uri} is unreachable"):
        Tracking.connect(project.load_params(project.root / "params.yaml"), project.root)
    assert time.monotonic() - started < 10


def test_doctor_reports_each_problem_with_its_fix(project: Project, workspace, capsys) -> None:
    """In a folder that is not a git repository and has no DVC remote."""
    assert mlrig.main(project, ["doctor"]) == 1
    out = capsys.readouterr().out
    assert f"✓ library: mlrig {mlrig.__version__}" in out
    assert "✓ tracking URI: sqlite:///" in out
    assert "✓ authentication: accepted" in out
    assert "✓ artifact upload: stored under file://" in out
    assert "✗ git: not a git repository\n    fix: git init" in out
    assert "✗ DVC remote:" in out


def test_doctor_says_how_to_leave_a_path_source(workspace: Path, capsys) -> None:
    project = with_root(workspace)
    (workspace / "pyproject.toml").write_text(
        '[tool.uv.sources]\nmlrig = { path = "/checkouts/ml-template/mlrig" }\n'
    )
    mlrig.main(project, ["doctor"])
    line = next(line for line in capsys.readouterr().out.splitlines() if "library" in line)
    assert "from the folder /checkouts/ml-template/mlrig (a path source: this machine only)" in line
    assert "Before CI runs elsewhere" in line and "`make lock`" in line


def test_dot_env_is_read_without_overriding_the_environment(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Every command reads .env; the shell's own variables win; doctor names each origin."""
    project = with_root(workspace)
    uri = f"sqlite:///{workspace / 'from-dot-env.db'}"
    (workspace / ".env").write_text(
        f"MLFLOW_TRACKING_URI={uri}\nMLFLOW_TRACKING_USERNAME=from-file\n"
    )
    monkeypatch.setattr(environment, "_from_file", {})
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "from-shell")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    mlrig.main(project, ["doctor"])
    out = capsys.readouterr().out
    assert "MLFLOW_TRACKING_URI from .env; MLFLOW_TRACKING_USERNAME from environment" in out
    assert f"✓ tracking URI: {uri} (MLFLOW_TRACKING_URI)" in out
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "from-shell"
    assert "MLFLOW_TRACKING_PASSWORD" not in out


def test_doctor_on_an_unreachable_server(
    project: Project, workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    started = time.monotonic()
    assert mlrig.main(project, ["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✗ server reachable: MLflow tracking server http://127.0.0.1:9 is unreachable" in out
    assert "authentication" not in out  # it would only repeat the first failure
    assert time.monotonic() - started < 30


def test_dataset_lineage_of_a_large_split_is_cheap_and_counts_every_row(
    project: Project,
) -> None:
    """The schema comes from the first rows (MLflow would check every value in Python); the
    profile still has the split's true size."""
    cfg = project.load_params(project.root / "params.yaml")
    rows = DATASET_HEAD_ROWS * 3
    frame = pd.DataFrame(
        np.random.default_rng(0).normal(size=(rows, len(cfg.data.features))),
        columns=cfg.data.features,
    ).assign(target=1)
    started = time.monotonic()
    backend = LocalBackend(cfg.data, cfg.seed, LocalParams("local"))
    head, counted = backend.describe(frame, DATASET_HEAD_ROWS)
    described = dataset(cfg, head, counted, "training")
    assert time.monotonic() - started < 5
    assert json.loads(described.profile)["num_rows"] == rows
    schema = json.loads(described.schema)["mlflow_colspec"]
    assert [column["name"] for column in schema] == [*cfg.data.features, "target"]


def test_a_copied_project_is_relocated_and_runs(
    project: Project, workspace: Path, tmp_path_factory, monkeypatch, capsys
) -> None:
    """The embedded store keeps absolute artifact locations: in a copy, doctor says so,
    `relocate` points them at the copy's own artifacts, and the copy trains and serves."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    first = run_job(with_root(workspace), project.load_params())
    copy = tmp_path_factory.mktemp("copied") / "project"
    shutil.copytree(workspace, copy)
    monkeypatch.chdir(copy)
    copied = with_root(copy)
    before = sorted(p.name for p in (workspace / "mlartifacts").rglob("*"))

    assert mlrig.main(copied, ["doctor"]) == 1
    assert "✗ artifact locations: 1 experiment(s) keep artifacts outside" in capsys.readouterr().out
    assert mlrig.main(copied, ["relocate"]) == 0
    assert f"{(workspace / 'mlartifacts').as_uri()} -> {(copy / 'mlartifacts').as_uri()}" in (
        capsys.readouterr().out
    )
    mlrig.main(copied, ["doctor"])
    assert "✓ artifact locations: inside the project" in capsys.readouterr().out

    second = run_job(copied, copied.load_params())
    tracking = Tracking.of(copied.load_params(), copy)
    run = tracking.client.get_run(second.run_id)
    assert run.info.artifact_uri.startswith((copy / "mlartifacts").as_uri())
    name = copied.load_params().registry.model_name
    served = mlflow.pyfunc.load_model(f"models:/{name}/{first.version}")  # an old version, moved
    assert served.metadata.get_input_schema() is not None
    assert sorted(p.name for p in (workspace / "mlartifacts").rglob("*")) == before


def test_relocate_refuses_a_location_it_cannot_map(
    project: Project, workspace: Path, capsys
) -> None:
    """A location outside any `mlartifacts/` folder is named, and nothing is rewritten."""
    tracking = Tracking.connect(project.load_params(), project.root)
    elsewhere = (workspace.parent / "elsewhere" / "mlartifacts-old").as_uri()
    tracking.client.create_experiment("by-hand", artifact_location=elsewhere)
    assert mlrig.main(project, ["relocate"]) == 2
    assert f"error: {elsewhere} is not under a mlartifacts/ folder" in capsys.readouterr().err
    assert tracking.client.get_experiment_by_name("by-hand").artifact_location == elsewhere


def test_doctor_says_where_a_bare_mlflow_run_goes(
    project: Project, workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The embedded store's experiment 0 is the project's; another exported experiment name
    would take a bare `mlflow run` elsewhere."""
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    mlrig.main(project, ["doctor"])
    assert "✓ mlflow run: runs land in the experiment 'demo'" in capsys.readouterr().out
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "scratch")
    assert mlrig.main(project, ["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✗ mlflow run: MLFLOW_EXPERIMENT_NAME is 'scratch'" in out
    assert "export MLFLOW_EXPERIMENT_NAME=demo" in out


def test_mlflow_run_task_on_a_dead_server_fails_in_seconds(
    project: Project, workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    started = time.monotonic()
    assert mlrig.main(project, ["mlflow-run"]) == 2
    assert time.monotonic() - started < 10
    assert "http://127.0.0.1:9 is unreachable" in capsys.readouterr().err


def test_an_mlproject_that_is_not_yaml_is_one_line(workspace: Path, capsys) -> None:
    project = with_root(workspace)
    (workspace / "MLproject").write_text("name: demo\nentry_points:\n  main: [oops\n")
    assert mlrig.main(project, ["mlflow-run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: MLproject is not valid YAML (line 4, column 1)")


def test_mlflow_run_task_takes_the_server_from_dot_env(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make mlflow-run` on a team server named only in .env: one FINISHED run, in the
    project's experiment (a bare `mlflow run` would read no .env and use experiment 0)."""
    project = with_root(workspace)
    shutil.copy(Path(__file__).parent / "demo" / "MLproject", workspace / "MLproject")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    (workspace / ".env").write_text(f"MLFLOW_TRACKING_URI={uri}\n")
    monkeypatch.setattr(environment, "_from_file", {})
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    with background(mlflow_server(workspace, port), f"{uri}/health", {}, workspace):
        assert mlrig.main(project, ["mlflow-run", "-P", "seed=7"]) == 0
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("demo")
        runs = client.search_runs([experiment.experiment_id])
        assert [run.info.status for run in runs] == ["FINISHED"]
        assert runs[0].data.params["seed"] == "7"
        assert client.search_runs(["0"]) == []  # nothing in Default
        version = client.get_model_version_by_alias("demo-model", "challenger")
        assert version.run_id == runs[0].info.run_id


SIGTERM_DURING_A_RUN = """
import os, signal, sys, time
from demo.project import PROJECT
from mlrig.commands import run_command
from mlrig.tracking.run import start_run
from mlrig.tracking.store import Tracking

def job():
    cfg = PROJECT.load_params()
    with start_run(PROJECT, Tracking.connect(cfg, PROJECT.root), "sigterm") as run:
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


def test_an_interrupt_outlives_a_store_that_refuses_the_run_s_end(
    project: Project, workspace: Path, monkeypatch, capsys
) -> None:
    """Ctrl-C, and the store refuses the KILLED end ("database is locked" while `mlflow ui`
    reads it): the command still stops with its one line, and ends the run it left active
    as KILLED (never FINISHED, as MLflow would at exit)."""
    from mlflow.exceptions import MlflowException

    from mlrig.commands import run_command
    from mlrig.tracking.run import RunLogger, start_run

    def refused(self: RunLogger, status: str) -> None:
        raise MlflowException("(sqlite3.OperationalError) database is locked")

    monkeypatch.setattr(RunLogger, "end", refused)
    started = []

    def job() -> int:
        with start_run(project, tracking(), "locked") as run:
            started.append(run.run_id)
            raise KeyboardInterrupt

    assert run_command(job) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: interrupted (Ctrl-C)"
    assert MlflowClient().get_run(started[0]).info.status == "KILLED"


def test_ctrl_c_while_the_run_ends_still_ends_it_killed(
    project: Project, workspace: Path, monkeypatch, capsys
) -> None:
    """Ctrl-C just after `mlflow.end_run` popped the run, before the store heard of its end
    (tune's fourth trial in test_sweep was once left RUNNING so): nothing is left active, and
    the store has the run KILLED, not RUNNING."""
    from mlrig.commands import run_command
    from mlrig.tracking.run import start_run

    set_terminated, interrupted = MlflowClient.set_terminated, []

    def interrupt_once(self: MlflowClient, run_id: str, *args: object, **kwargs: object) -> None:
        if not interrupted:
            interrupted.append(run_id)
            raise KeyboardInterrupt
        set_terminated(self, run_id, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "set_terminated", interrupt_once)
    started = []

    def job() -> int:
        with start_run(project, tracking(), "ending") as run:
            started.append(run.run_id)
        return 0

    assert run_command(job) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: interrupted (Ctrl-C)"
    assert interrupted == started
    assert mlflow.active_run() is None
    assert MlflowClient().get_run(started[0]).info.status == "KILLED"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("nonsense://x", "has the unknown scheme 'nonsense'"),
        ("sqlite:///{garbage}", "cannot be opened as an MLflow store (file is not a database)"),
    ],
)
def test_a_bad_tracking_store_is_one_line_naming_it(
    project: Project, workspace: Path, uri: str, message: str, monkeypatch, capsys
) -> None:
    garbage = workspace / "not-a-store.db"
    garbage.write_text("these bytes are no sqlite database\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.format(garbage=garbage))
    assert mlrig.main(project, ["gc"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and message in line
    if "sqlite" in uri:
        assert str(garbage) in line


def dot_env(workspace: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The demo project rooted at the workspace, with this .env."""
    (workspace / ".env").write_text(text)
    monkeypatch.setattr(environment, "_from_file", {})
    return with_root(workspace)


def test_a_dot_env_sets_only_the_projects_settings(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A .env that came with a copied folder tries to make git run a command (doctor's git
    check would run it): only declared settings are read, the rest is named and ignored."""
    marker = workspace / "fsmonitor-ran"
    project = dot_env(
        workspace,
        "GIT_CONFIG_COUNT=1\nGIT_CONFIG_KEY_0=core.fsmonitor\n"
        f"GIT_CONFIG_VALUE_0=touch {marker}\nMLFLOW_EXPERIMENT_NAME=demo\n",
        monkeypatch,
    )
    subprocess.run(["git", "init", "--quiet"], cwd=workspace, check=True)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    mlrig.main(project, ["doctor"])
    captured = capsys.readouterr()
    first = captured.err.splitlines()[0]
    assert first.startswith("note: ") and "GIT_CONFIG_COUNT, GIT_CONFIG_KEY_0" in first
    assert "ignored" in first and "GIT_CONFIG_COUNT" not in os.environ
    assert "MLFLOW_EXPERIMENT_NAME from .env" in captured.out
    assert not marker.exists()


def test_a_dot_env_that_git_tracks_is_refused(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    project = dot_env(workspace, "MLFLOW_TRACKING_URI=http://127.0.0.1:9\n", monkeypatch)
    for command in (["init", "--quiet"], ["add", ".env"]):
        subprocess.run(["git", *command], cwd=workspace, check=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert mlrig.main(project, ["doctor"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "is tracked by git" in line and "`git rm --cached .env`" in line
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_credentials_sent_to_a_server_a_dot_env_names_are_said_first(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Both servers a .env may name, and what goes to each: credentials from the environment
    and from the files MLflow and boto3 read. `${VAR}` in .env is text, never another value."""
    uri, endpoint = "http://127.0.0.1:9", "http://127.0.0.1:8"
    project = dot_env(
        workspace,
        f"MLFLOW_TRACKING_URI={uri}\nMLFLOW_S3_ENDPOINT_URL={endpoint}/${{AWS_SECRET_ACCESS_KEY}}\n",
        monkeypatch,
    )
    home = workspace / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text("[default]\n")
    monkeypatch.setenv("HOME", str(home))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "alice-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-secret")
    mlrig.main(project, ["doctor"])
    first, second = capsys.readouterr().err.splitlines()[:2]
    assert first == (
        f"note: MLFLOW_TRACKING_URI={uri} comes from {workspace / '.env'}; your credentials in "
        "MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_TOKEN go to it"
    )
    assert second.startswith(f"note: MLFLOW_S3_ENDPOINT_URL={endpoint}/${{AWS_SECRET_ACCESS_KEY}}")
    assert second.endswith("AWS_SECRET_ACCESS_KEY, ~/.aws/credentials go to it")
    assert "the-secret" not in os.environ["MLFLOW_S3_ENDPOINT_URL"]


def test_a_repository_git_cannot_read_fails_closed(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Whether git tracks .env is asked of git; an answer other than yes or no (a corrupt
    index here) stops the command instead of reading a .env that may be tracked."""
    project = dot_env(workspace, "MLFLOW_TRACKING_URI=http://127.0.0.1:9\n", monkeypatch)
    subprocess.run(["git", "init", "--quiet"], cwd=workspace, check=True)
    (workspace / ".git" / "index").write_bytes(b"not an index")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert mlrig.main(project, ["doctor"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "cannot tell whether git tracks" in line and "MLFLOW_TRACKING_URI" not in os.environ
