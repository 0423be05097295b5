"""Retention on a real store: stale failed runs are deleted (never one behind a model
version), then `mlflow gc` purges deleted runs with their artifacts."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

import mlrig
from mlrig import Project
from mlrig.retention import DAY_MS
from mlrig.testing import background, free_port, mlflow_server
from mlrig.tracking.run import HOST_TAG, PID_TAG


def finished_run(client: MlflowClient, experiment_id: str, status: str, days_ago: float) -> str:
    run = client.create_run(experiment_id)
    client.log_text(run.info.run_id, "artifact", "notes.txt")
    ended = int(time.time() * 1000 - days_ago * DAY_MS)
    client.set_terminated(run.info.run_id, status, end_time=ended)
    return run.info.run_id


def test_gc_applies_the_retention_policy(project: Project, workspace: Path, capsys) -> None:
    assert mlrig.main(project, ["init-tracking"]) == 0
    cfg = project.load_params()
    client = MlflowClient()
    experiment = client.get_experiment_by_name(cfg.tracking.experiment_name).experiment_id
    days = cfg.tracking.retention.failed_run_days
    stale = finished_run(client, experiment, "FAILED", days + 1)
    killed = finished_run(client, experiment, "KILLED", days + 2)
    recent = finished_run(client, experiment, "FAILED", days - 1)
    finished = finished_run(client, experiment, "FINISHED", days + 1)
    registered = finished_run(client, experiment, "FAILED", days + 1)
    client.create_registered_model("kept")
    client.create_model_version("kept", f"runs:/{registered}/artifact", run_id=registered)
    capsys.readouterr()

    assert mlrig.main(project, ["gc"]) == 0  # a dry run first: nothing changes
    preview = capsys.readouterr().out
    assert stale in preview and killed in preview and "dry run" in preview
    assert client.get_run(stale).info.lifecycle_stage == "active"

    assert mlrig.main(project, ["gc", "--apply"]) == 0
    stages = {run_id: client.get_run(run_id).info.lifecycle_stage for run_id in (
        stale, killed, recent, finished, registered)}  # fmt: skip
    assert stages == {
        stale: "deleted", killed: "deleted", recent: "active", finished: "active",
        registered: "active",
    }  # fmt: skip

    # Deleted runs older than purge_after_days go for good, artifacts included.
    artifacts = Path(mlflow.get_run(stale).info.artifact_uri.removeprefix("file://"))
    assert artifacts.is_dir()
    params = Path("params.yaml")
    params.write_text(params.read_text().replace("purge_after_days: 30", "purge_after_days: 0"))
    assert mlrig.main(project, ["gc", "--apply"]) == 0
    assert "purged" in capsys.readouterr().out
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_run(stale)
    assert not artifacts.exists()
    assert client.get_run(recent).info.lifecycle_stage == "active"


def test_gc_on_a_tracking_server_leaves_the_purge_to_its_administrator(
    project: Project, workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = mlflow_server(workspace, port)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with background(server, f"{uri}/health", {}, workspace):
        assert mlrig.main(project, ["init-tracking"]) == 0
        cfg = project.load_params()
        client = MlflowClient()
        experiment = client.get_experiment_by_name(cfg.tracking.experiment_name).experiment_id
        stale = finished_run(
            client, experiment, "FAILED", cfg.tracking.retention.failed_run_days + 1
        )
        capsys.readouterr()
        assert mlrig.main(project, ["gc", "--apply"]) == 0
        out = capsys.readouterr().out
        assert client.get_run(stale).info.lifecycle_stage == "deleted"
        assert (
            f"mlflow gc --older-than 30.0d --backend-store-uri <its database URI> "
            f"--tracking-uri {uri}" in out
        )
        assert "purged" not in out


def test_stale_running_runs_are_listed_then_ended_as_killed(
    project: Project, workspace: Path, capsys
) -> None:
    """A RUNNING run whose process is gone (a crash, `kill -9`): `doctor` names it, `gc` says it
    would end it, `gc --apply` ends it KILLED; a live one and a recent untagged one stay."""
    assert mlrig.main(project, ["init-tracking"]) == 0
    cfg = project.load_params()
    client = MlflowClient()
    experiment = client.get_experiment_by_name(cfg.tracking.experiment_name).experiment_id
    gone = subprocess.Popen(["true"])
    gone.wait()
    here = socket.gethostname()
    crashed = client.create_run(experiment, tags={HOST_TAG: here, PID_TAG: str(gone.pid)})
    alive = client.create_run(experiment, tags={HOST_TAG: here, PID_TAG: str(os.getpid())})
    hours = cfg.tracking.retention.stale_running_hours
    old = int(time.time() * 1000 - (hours + 1) * 3_600_000)
    elsewhere = client.create_run(experiment, start_time=old)
    recent = client.create_run(experiment)
    capsys.readouterr()

    assert mlrig.main(project, ["doctor"]) == 1
    report = capsys.readouterr().out
    assert "stale runs" in report and "2 RUNNING run(s)" in report, report
    assert mlrig.main(project, ["gc"]) == 0
    preview = capsys.readouterr().out
    assert f"would end RUNNING run {crashed.info.run_name} as KILLED (its process" in preview
    assert f"{elsewhere.info.run_name} as KILLED (started more than" in preview
    assert mlrig.main(project, ["gc", "--apply"]) == 0
    status = {run.info.run_id: client.get_run(run.info.run_id).info.status
              for run in (crashed, alive, elsewhere, recent)}  # fmt: skip
    assert status == {
        crashed.info.run_id: "KILLED", alive.info.run_id: "RUNNING",
        elsewhere.info.run_id: "KILLED", recent.info.run_id: "RUNNING",
    }  # fmt: skip
    # doctor's own probe run (deleted after the check) was ended, not left RUNNING.
    probes = client.search_runs(
        [experiment], "tags.run_type = 'doctor'", run_view_type=ViewType.ALL
    )
    assert probes and {run.info.status for run in probes} == {"FINISHED"}


def test_the_purge_lists_its_folders_and_refuses_one_outside_the_project(
    project: Project, workspace: Path, tmp_path_factory: pytest.TempPathFactory, capsys
) -> None:
    """A store that names a folder outside the project (a run moved there by hand, a copied
    store's old place): the dry run lists every folder the purge would delete and names the
    outside one; `--apply` refuses it, changing nothing; the folder is still there."""
    assert mlrig.main(project, ["init-tracking"]) == 0
    client = MlflowClient()
    inside = client.get_experiment_by_name(project.load_params().tracking.experiment_name)
    ours = finished_run(client, inside.experiment_id, "FINISHED", 0)
    elsewhere = tmp_path_factory.mktemp("not-the-project")
    foreign = client.create_experiment("foreign", artifact_location=elsewhere.as_uri())
    theirs = finished_run(client, foreign, "FINISHED", 0)
    for run_id in (ours, theirs):
        client.delete_run(run_id)
    params = Path("params.yaml")
    params.write_text(params.read_text().replace("purge_after_days: 30", "purge_after_days: 0"))
    capsys.readouterr()

    assert mlrig.main(project, ["gc"]) == 0
    preview = capsys.readouterr().out
    ours_folder = client.get_run(ours).info.artifact_uri
    assert (
        f"would purge run {client.get_run(ours).info.run_name} ({ours}): {ours_folder}" in preview
    )
    assert f"({theirs}): {elsewhere.as_uri()}" in preview and "would refuse" in preview

    assert mlrig.main(project, ["gc", "--apply"]) == 2
    refusal = capsys.readouterr().err
    assert "refusing to purge (nothing changed)" in refusal and theirs in refusal
    assert (elsewhere / theirs).is_dir() and client.get_run(ours).info.lifecycle_stage == "deleted"
