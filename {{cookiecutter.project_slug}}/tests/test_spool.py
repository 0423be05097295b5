"""Fault injection: the tracking server is killed in the middle of a run. The job still ends,
everything it would have logged is spooled, and `sync` replays it into the same run once the
server is back: 0 runs lost, the model registered, nothing left in the spool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from conftest import FAST_PARAMS, FAST_ROUNDS, RAW, assert_complete_run, background, free_port
from mlflow import MlflowClient
{%- if cookiecutter.team_server == "yes" %}
from team_server import available, team_server
{%- endif %}

from {{ cookiecutter.package_name }} import pipeline, spool
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import load_params

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def kill(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()


@pytest.fixture
def spooling(workspace: Path) -> Path:
    """params.yaml with a small model and the spool inside the workspace; returns the spool."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["model"].update(FAST_PARAMS)
    params["tracking"]["spool_dir"] = str(workspace / "spool")
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
    assert spool.pending(cfg) == []
    assert not any(spool_dir.iterdir())


def test_server_killed_between_dvc_stages(
    spooling: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The train stage logs to the server; it dies; the evaluate stage spools its metrics,
    plots and the registration, and `dvc repro` would carry on."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{spooling.parent / 'server.db'}",
        "--artifacts-destination", str(spooling.parent / "server-artifacts"),
    ]  # fmt: skip
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    cfg = load_params()
    with background(server, f"{uri}/health", {}, spooling.parent) as process:
        pipeline.stage_prepare(cfg)
        pipeline.stage_train(cfg)
        kill(process)
    summary = pipeline.stage_evaluate(cfg)
    assert summary.version is None and summary.spooled == spooling / summary.run_id
    assert "run `make sync`" in str(summary)
    assert json.loads(Path("reports/metrics.json").read_text())["test_auc"] > 0.9

    assert main(["sync"]) == 2  # still down: fails fast, keeps the spool
    assert f"{uri} is unreachable" in capsys.readouterr().err
    assert main(["doctor"]) == 1
    assert "✗ spooled runs: 1 run(s)" in capsys.readouterr().out
    with background(server, f"{uri}/health", {}, spooling.parent):
        assert main(["sync"]) == 0
        assert "registered as version 1" in capsys.readouterr().out
        assert_synced(summary.run_id, spooling)
{%- if cookiecutter.team_server == "yes" %}


@pytest.mark.skipif(available() is not None, reason=str(available()))
def test_team_server_killed_right_after_training(
    spooling: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """PostgreSQL + S3 + basic auth: the server dies when training ends, before the history,
    the model and everything after it reach it; the job still finishes."""
    with team_server(tmp_path_factory.mktemp("fault")) as topology:
        for key, value in {
            "MLFLOW_TRACKING_URI": topology.uri,
            "MLFLOW_TRACKING_USERNAME": topology.username,
            "MLFLOW_TRACKING_PASSWORD": topology.password,
        }.items():
            monkeypatch.setenv(key, value)
        trained = pipeline.train

        def train_then_kill_the_server(*args: object) -> object:
            result = trained(*args)
            kill(topology.server)
            return result

        monkeypatch.setattr(pipeline, "train", train_then_kill_the_server)
        summary = pipeline.run_job(load_params())
        assert summary.version is None
        journal = (spooling / summary.run_id / spool.JOURNAL).read_text()
        ops = [json.loads(line)["op"] for line in journal.splitlines()]
        assert ops[0] == "run" and ops[-1] == "end"
        assert ops.count("metrics") == (2 if FAST_ROUNDS else 1)  # the history (sent in the
        # background) and the report
        assert {"model", "artifact", "table", "register"} <= set(ops)
        with topology.relaunch():
            assert main(["sync"]) == 0
            assert_synced(summary.run_id, spooling)
{%- endif %}
