"""End to end on the real data: the tracked job (`train`) and the DVC stages each make one
complete MLflow run with the project's report, and register a challenger."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import FAST, FAST_ROUNDS, RAW
from mlflow import MlflowClient
from mlrig import Scored

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.metrics import (
    CURVE_POINTS,
    precision_recall_points,
    roc_points,
)
from {{ cookiecutter.package_name }}.project import PROJECT

PLOTS = {"confusion_matrix", "roc_curve", "precision_recall_curve", "feature_importance"}
TABLES = {"roc", "precision_recall", "confusion", "importance"}


def check_run(run_id: str, rounds: int | None) -> None:
    """Finished, with the config, lineage, the project's metrics and plots, and the model
    registered as @challenger."""
    cfg = PROJECT.load_params()
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name.startswith(f"{cfg.project}-{cfg.model.kind}-")
    assert run.data.params["data.target"] == "target"
    assert {"git.commit", "data.dvc_md5", "team", "dataset_version"} <= run.data.tags.keys()
    assert {"test_auc", "test_f1", "test_precision", "valid_auc"} <= run.data.metrics.keys()
    assert run.data.metrics["test_auc"] > 0.9
    if rounds:
        history = client.get_metric_history(run_id, "iter_valid_logloss")
        assert [m.step for m in history] == list(range(rounds))
    artifacts = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {f"plots/{name}.png" for name in PLOTS} | {f"plots/{n}.json" for n in TABLES} == (
        artifacts
    )
    version = client.get_model_version_by_alias(cfg.registry.model_name, cfg.registry.alias)
    assert version.run_id == run_id
    model = mlflow.pyfunc.load_model(f"models:/{cfg.registry.model_name}/{version.version}")
    sample = pd.read_csv(RAW).drop(columns=[cfg.data.target]).head(3)
    assert set(model.predict(sample)) <= {0, 1}


def test_the_train_command_registers_a_challenger(workspace: Path, capsys) -> None:
    assert main(["train", *FAST]) == 0
    out = capsys.readouterr().out
    assert "(alias @challenger)" in out
    run_id = out.split("Run:")[1].split("(")[1].split(")")[0]
    check_run(run_id, FAST_ROUNDS)


def test_the_dvc_stages_write_their_outputs_and_one_run(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `dvc repro` runs, on params.yaml (a quick model written into it)."""
    import mlrig

    params = yaml.safe_load(Path("params.yaml").read_text())
    for override in FAST:
        key, value = override.removeprefix("model.").split("=")
        params["model"][key] = yaml.safe_load(value)
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("prepare", "train"):
        with pytest.raises(SystemExit) as ended:
            mlrig.stage(PROJECT, stage)
        assert ended.value.code == 0
    assert {p.name for p in Path("data/processed").iterdir()} == {"train.csv", "valid.csv",
                                                                    "test.csv"}  # fmt: skip
    assert (Path("models/model") / "MLmodel").is_file()
    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert {p.stem for p in Path("reports/plots").iterdir()} == TABLES
    assert {p.stem for p in Path("reports/figures").iterdir()} == PLOTS
    counts = pd.read_csv("reports/plots/confusion.csv")
    test = pd.read_csv("data/processed/test.csv")
    assert counts["count"].sum() == len(test)  # four counted cells, the whole test split
    correct = counts.loc[counts["actual"] == counts["predicted"], "count"].sum()
    assert correct / len(test) == pytest.approx(metrics["test_accuracy"])
    (run,) = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name(PROJECT.load_params().tracking.experiment_name)
         .experiment_id]
    )  # fmt: skip
    assert run.data.metrics["test_auc"] == pytest.approx(metrics["test_auc"])
    check_run(run.info.run_id, FAST_ROUNDS)


def test_a_large_split_s_curves_are_thinned_to_curve_points() -> None:
    """One point per distinct score would be one per test row; the tables keep both ends."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 50_000)
    scored = Scored(labels, np.clip(labels * 0.3 + rng.random(50_000) * 0.7, 0, 1))
    roc, precision_recall = roc_points(scored), precision_recall_points(scored)
    assert len(roc) <= CURVE_POINTS and len(precision_recall) <= CURVE_POINTS
    assert roc.iloc[0].tolist() == [0, 0] and roc.iloc[-1].tolist() == [1, 1]
    assert precision_recall["recall"].iloc[0] == 1 and precision_recall["recall"].iloc[-1] == 0
