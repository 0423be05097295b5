"""End to end on small data: one MLflow run per job and per train stage, everything logged, a
model registered; a failed run registers nothing."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from conftest import BOOSTED, BOOSTED_ROUNDS, RAW, assert_complete_run
from mlflow import MlflowClient

from mlrig import DataError, Project
from mlrig.job import run_job
from mlrig.stages import prepare, train
from mlrig.steps import MODEL_DIR, MODEL_UUID_TAG


def _no_stray_mlruns(*roots: Path) -> None:
    for root in roots:
        assert not (root / "mlruns").exists(), f"stray mlruns/ in {root}"


@pytest.mark.parametrize(("overrides", "rounds"), [([], None), (BOOSTED, BOOSTED_ROUNDS)])
def test_job_registers_a_challenger(
    project: Project, workspace: Path, overrides: list[str], rounds: int | None
) -> None:
    cfg = project.composed(overrides)
    summary = run_job(project, cfg)

    assert_complete_run(summary.run_id, cfg, rounds)
    client = MlflowClient()
    registered = client.get_model_version_by_alias(cfg.registry.model_name, "challenger")
    assert str(registered.version) == summary.version
    assert registered.run_id == summary.run_id
    loaded = mlflow.pyfunc.load_model(f"models:/{cfg.registry.model_name}@challenger")
    sample = pd.read_csv(RAW).drop(columns=[cfg.data.target]).head(3)
    assert set(loaded.predict(sample)) <= {0, 1}
    assert (workspace / "mlartifacts").is_dir()
    _no_stray_mlruns(workspace, project.root)


def test_a_logged_model_requires_the_installed_versions(project: Project, workspace: Path) -> None:
    """The model's requirements.txt pins what the environment has (a project's uv.lock)."""
    cfg = project.composed(BOOSTED)
    summary = run_job(project, cfg)
    uri = f"models:/{cfg.registry.model_name}/{summary.version}"
    requirements = Path(mlflow.artifacts.download_artifacts(uri)) / "requirements.txt"
    pins = dict(line.split("==") for line in requirements.read_text().split())
    assert pins == {"mlflow": version("mlflow"), "xgboost-cpu": version("xgboost-cpu")}


def test_the_train_stage_is_one_complete_run_each_time(project: Project, workspace: Path) -> None:
    """Each run of the stage is one run with its metrics and its version, also when it
    reproduces the model byte for byte (DVC may skip nothing it would have to redo)."""
    cfg = project.load_params()
    prepare(project, cfg)
    runs = []
    for _ in range(2):
        summary = train(project, cfg)
        assert_complete_run(summary.run_id, cfg)
        runs.append((summary, (MODEL_DIR / "MLmodel").read_bytes()))
    (first, model), (second, again) = runs
    assert model == again and first.version != second.version
    flavor = yaml.safe_load((MODEL_DIR / "MLmodel").read_text())["flavors"]["sklearn"]
    loaded = project.model("linear").load_native(MODEL_DIR, flavor)
    assert set(loaded.predict(pd.read_csv(RAW)[cfg.data.features].head(5))) <= {0, 1}
    tags = MlflowClient().get_run(second.run_id).data.tags
    assert tags[MODEL_UUID_TAG] == MlflowClient().get_run(first.run_id).data.tags[MODEL_UUID_TAG]
    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert metrics["test_auc"] == pytest.approx(second.metrics["test_auc"])
    assert {p.name for p in Path("reports/plots").iterdir()} == {"roc.csv", "importance.csv"}
    assert {p.name for p in Path("reports/figures").iterdir()} == {"roc_curve.png"}
    _no_stray_mlruns(workspace, project.root)


def test_bad_data_fails_before_any_run(project: Project, workspace: Path) -> None:
    cfg = project.load_params()
    Path(RAW).write_text("not,a,dataset\n" + "1,2,3\n" * cfg.data.min_rows)
    with pytest.raises(DataError, match="does not match"):
        run_job(project, cfg)
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


def test_failed_run_registers_nothing(project: Project, workspace: Path) -> None:
    def evaluation_fails(*args: object) -> None:
        raise RuntimeError("evaluation failed")

    failing = project.__class__(**{**vars(project), "report": evaluation_fails})
    with pytest.raises(RuntimeError, match="evaluation failed"):
        run_job(failing, project.load_params())
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FAILED"
    assert MlflowClient().search_registered_models() == []
