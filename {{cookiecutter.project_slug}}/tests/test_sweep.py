"""Sweeps: Hydra multirun and the Optuna search make one parent run with a child per job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import FAST
from mlflow import MlflowClient
from mlflow.entities import Run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
{%- if cookiecutter.model_library == "xgboost" %}
# -1: XGBoost refuses it once training starts, so that job's run fails
SWEPT = "model.min_child_weight=1,-1,2"
STATUSES = ["FAILED", "FINISHED", "FINISHED"]
SEARCHED = ("model.learning_rate", "model.max_depth")
{%- else %}
SWEPT = "model.C=0.01,1.0,100.0"
STATUSES = ["FINISHED", "FINISHED", "FINISHED"]
SEARCHED = ("model.C", "model.C")  # the sampled and the best value
{%- endif %}


def sweep(*overrides: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}.cli", "train", "-m"]
    done = subprocess.run(
        [*command, *overrides, *FAST], capture_output=True, text=True, env=os.environ.copy()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def parent_and_children() -> tuple[Run, list[Run]]:
    """The newest sweep's parent run and its children."""
    client = MlflowClient()
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], order_by=["start_time DESC"]
    )
    parent = next(run for run in runs if "sweep.children" in run.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def test_multirun_nests_jobs_and_a_failed_job_would_not_stop_it(workspace: Path) -> None:
    done = sweep(SWEPT)
    parent, children = parent_and_children()

    assert len(children) == 3
    assert sorted(c.info.status for c in children) == STATUSES
    finished = [c for c in children if c.info.status == "FINISHED"]
    best = max(finished, key=lambda run: run.data.metrics["test_auc"])
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name.endswith("-sweep-1")
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.tags["sweep.failed"] == str(STATUSES.count("FAILED"))
    assert parent.data.metrics["best_test_auc"] == best.data.metrics["test_auc"]
    assert SWEPT in parent.data.tags["sweep.overrides"]
    assert f"best test_auc={best.data.metrics['test_auc']:.4f}" in done.stdout


def test_optuna_search_is_seeded_and_its_best_trial_is_recorded(workspace: Path) -> None:
    trials = ["hparams_search=optuna", "hydra.sweeper.n_trials=3"]
    sampled = []
    for _ in range(2):
        sweep(*trials)
        parent, children = parent_and_children()
        assert len(children) == 3 and {c.info.status for c in children} == {"FINISHED"}
        assert parent.data.tags["sweep.sweeper"] == "OptunaSweeper"
        sampled.append(sorted(c.data.params[SEARCHED[0]] for c in children))

    assert sampled[0] == sampled[1]  # the sampler is seeded with `seed`
    (results,) = sorted(Path(".hydra-runs/multirun").glob("*/optimization_results.yaml"))[-1:]
    best = yaml.safe_load(results.read_text())
    assert parent.data.metrics["best_test_auc"] == pytest.approx(best["best_value"])
    best_child = MlflowClient().get_run(parent.data.tags["best_run_id"])
    chosen = yaml.safe_load(best_child.data.params[SEARCHED[1]])
    assert chosen == best["best_params"][SEARCHED[1]]
