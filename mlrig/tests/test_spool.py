"""Fault injection: the tracking server is killed in the middle of a run. The job still ends,
everything it would have logged is spooled, and `sync` replays it into the same run once the
server is back: 0 runs lost, the model registered once, nothing left in the spool. Where CI is
set, a lost server fails the job instead; `sync` reports every journal it cannot replay."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import assert_synced

import mlrig
import mlrig.job
from mlrig import Project
from mlrig.backends.local import LocalBackend
from mlrig.stages import prepare, train
from mlrig.steps import resolve
from mlrig.testing import background, free_port, kill, mlflow_server
from mlrig.tracking import journal
from mlrig.tracking.run import start_run
from mlrig.tracking.store import Tracking, TrackingError

pytestmark = pytest.mark.slow


@pytest.fixture
def server(spooling: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    """A local `mlflow server` command (not started) and the URI the project points at."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return mlflow_server(spooling.parent, port), uri


def kill_after_training(monkeypatch: pytest.MonkeyPatch, process: subprocess.Popen) -> None:
    """The server dies as soon as the model is trained: the history, the model, the report
    and the registration meet a dead server."""
    trained = LocalBackend.train

    def train_then_kill(*args: object) -> object:
        result = trained(*args)
        kill(process)
        return result

    monkeypatch.setattr(LocalBackend, "train", train_then_kill)


def test_server_killed_during_the_train_stage(
    project: Project, spooling: Path, server: tuple[list[str], str], monkeypatch, capsys
) -> None:
    """The stage goes on: its DVC outputs are written, the rest of the run is spooled."""
    command, uri = server
    cfg = project.load_params()
    with background(command, f"{uri}/health", {}, spooling.parent) as process:
        prepare(project, cfg)
        kill_after_training(monkeypatch, process)
        summary = train(project, cfg)
    assert summary.version is None and summary.spooled == spooling / summary.run_id
    assert "run `make sync`" in str(summary)
    assert json.loads(Path("reports/metrics.json").read_text())["test_auc"] > 0.8
    entries = (spooling / summary.run_id / journal.JOURNAL).read_text().splitlines()
    ops = [json.loads(line)["op"] for line in entries]
    assert ops[0] == "run" and ops[-1] == "end"
    assert {"model", "model_metrics", "text", "figure", "table", "register"} <= set(ops)

    assert mlrig.main(project, ["sync"]) == 2  # still down: fails fast, keeps the spool
    assert f"{uri} is unreachable" in capsys.readouterr().err
    assert mlrig.main(project, ["doctor"]) == 1
    assert "✗ spooled runs: 1 run(s)" in capsys.readouterr().out
    with background(command, f"{uri}/health", {}, spooling.parent):
        assert mlrig.main(project, ["sync"]) == 0
        assert "registered as version 1" in capsys.readouterr().out
        assert_synced(summary.run_id, spooling)


def test_a_server_lost_after_the_model_was_logged_syncs_its_metrics(
    project: Project, spooling: Path, server: tuple[list[str], str], monkeypatch, capsys
) -> None:
    """The model reached the server, the evaluation did not: the spool's header remembers
    the logged model, so `sync` links the journaled model metrics to it (before, every sync
    failed: "a model that no earlier entry logged")."""
    from mlflow import MlflowClient

    import mlrig.steps

    command, uri = server
    cfg = project.load_params()
    evaluate = mlrig.steps.evaluate
    with background(command, f"{uri}/health", {}, spooling.parent) as process:

        def kill_then_evaluate(*args: object) -> object:
            kill(process)
            return evaluate(*args)

        monkeypatch.setattr(mlrig.steps, "evaluate", kill_then_evaluate)
        summary = mlrig.job.run_job(project, cfg)
    folder = spooling / summary.run_id
    header, *calls = [
        json.loads(line) for line in (folder / journal.JOURNAL).read_text().splitlines()
    ]
    assert header["model_id"] and "model" not in {call["op"] for call in calls}
    with background(command, f"{uri}/health", {}, spooling.parent):
        assert mlrig.main(project, ["sync"]) == 0, capsys.readouterr().err
        assert_synced(summary.run_id, spooling)
        logged = MlflowClient().get_logged_model(header["model_id"])
        assert "test_auc" in {metric.key for metric in logged.metrics or []}


def test_where_ci_is_set_a_lost_server_fails_the_job(
    project: Project, spooling: Path, server: tuple[list[str], str], monkeypatch
) -> None:
    """tracking.on_server_loss=auto with CI set: the job stops with an error (CI goes red),
    its run journaled as FAILED for `sync`."""
    command, uri = server
    params = Path("params.yaml")
    params.write_text(params.read_text().replace("on_server_loss: spool", "on_server_loss: auto"))
    monkeypatch.setenv("CI", "true")
    cfg = project.load_params()
    with background(command, f"{uri}/health", {}, spooling.parent) as process:
        kill_after_training(monkeypatch, process)
        with pytest.raises(TrackingError, match="on_server_loss is fail"):
            mlrig.job.run_job(project, cfg)
    (spooled,) = journal.pending(Tracking.of(cfg, project.root))
    entries = (spooled / journal.JOURNAL).read_text().splitlines()
    assert json.loads(entries[-1]) == {"op": "end", "status": "FAILED"}


def test_sync_replays_every_valid_journal_and_reports_each_bad_one(
    project: Project, spooling: Path, server: tuple[list[str], str], capsys
) -> None:
    command, uri = server
    cfg = project.load_params()
    ended = subprocess.Popen(["true"])  # its pid no longer runs once it is waited for
    ended.wait()
    with background(command, f"{uri}/health", {}, spooling.parent):
        client = Tracking.connect(cfg, project.root).client
        experiment = client.create_experiment("spooled")
        runs = {name: client.create_run(experiment).info.run_id for name in "ABCD"}
        for name, run_id in runs.items():
            folder = spooling / run_id
            journal.append(folder, journal.write("run", folder, run_id, uri, "test"))
            journal.append(folder, journal.write("tags", folder, {"journal": name}))
            if name == "C":
                journal.append(folder, {"op": "teleport"})
            if name != "D":
                journal.append(folder, journal.write("end", folder, "FINISHED"))
        header = json.loads((spooling / runs["D"] / journal.JOURNAL).read_text().splitlines()[0])
        header["pid"] = ended.pid
        lines = (spooling / runs["D"] / journal.JOURNAL).read_text().splitlines()
        (spooling / runs["D"] / journal.JOURNAL).write_text(
            "\n".join([json.dumps(header), *lines[1:]]) + "\n"
        )

        assert mlrig.main(project, ["sync"]) == 1
        out = capsys.readouterr().out
        assert f"{runs['C']}: not replayed: SyncError" in out and "teleport" in out
        assert f"`sync --abandon {runs['D']}`" in out
        for name in "AB":
            run = client.get_run(runs[name])
            assert (run.info.status, run.data.tags["journal"]) == ("FINISHED", name)
        pending = journal.pending(Tracking.of(cfg, project.root))
        assert {p.name for p in pending} == {runs["C"], runs["D"]}

        assert mlrig.main(project, ["sync", "--abandon", runs["D"]]) == 0
        assert client.get_run(runs["D"]).info.status == "FAILED"
        pending = journal.pending(Tracking.of(cfg, project.root))
        assert {p.name for p in pending} == {runs["C"]}


def kill_when_registered(database: Path, run_id: str, process: subprocess.Popen) -> None:
    """SIGKILL the server as soon as its store holds a version of `run_id`, at a random
    moment of the registration that follows (before or after the client hears of it)."""
    deadline = time.monotonic() + 60
    query = "SELECT COUNT(*) FROM model_versions WHERE run_id = ?"
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(database) as db:
                if db.execute(query, (run_id,)).fetchone()[0]:
                    break
        except sqlite3.OperationalError:  # the server holds a write lock
            pass
        time.sleep(0.002)
    time.sleep(random.uniform(0, 0.05))
    kill(process)


def test_a_server_killed_during_registration_leaves_one_version_per_run(
    project: Project, spooling: Path, server: tuple[list[str], str], monkeypatch
) -> None:
    """5 trials: each run's registration meets a server killed at a random moment of it; the
    next start of the server syncs the journal. Each run ends with exactly one version."""
    command, uri = server
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    cfg = project.load_params()
    spec, backend = resolve(project, cfg)
    splits = backend.load_splits()
    model = backend.train(spec, cfg.model, splits).model
    name, database = cfg.registry.model_name, spooling.parent / "server.db"
    trials: list[str] = []
    while True:
        with background(command, f"{uri}/health", {}, spooling.parent) as process:
            tracking = Tracking.connect(cfg, project.root)
            assert mlrig.main(project, ["sync"]) == 0  # the previous trial's journal, if any
            if len(trials) == 5:
                check_one_version_per_run(tracking, name, cfg.registry.alias, trials)
                break
            with start_run(project, tracking, "trial") as run:
                model_uri = run.model(spec, model, backend.sample(splits))
                killer = threading.Thread(
                    target=kill_when_registered, args=(database, run.run_id, process)
                )
                killer.start()
                run.register(model_uri, name, cfg.registry.alias)
                killer.join()
            trials.append(run.run_id)


def check_one_version_per_run(tracking: Tracking, name: str, alias: str, trials: list[str]) -> None:
    client = tracking.client
    versions = client.search_model_versions(f"name = '{name}'")
    made = {run_id: [v.version for v in versions if v.run_id == run_id] for run_id in trials}
    assert all(len(numbers) == 1 for numbers in made.values()), made
    assert client.get_model_version_by_alias(name, alias).run_id == trials[-1]
    assert {client.get_run(run_id).info.status for run_id in trials} == {"FINISHED"}
    assert journal.pending(tracking) == []


def test_a_run_that_cannot_be_created_fails_in_one_line(
    project: Project, spooling: Path, server: tuple[list[str], str], monkeypatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tracking = Tracking.of(project.load_params(), project.root)
    refused = "stopped answering while the run was being created"
    with pytest.raises(TrackingError, match=refused), start_run(project, tracking, "never"):
        pass
