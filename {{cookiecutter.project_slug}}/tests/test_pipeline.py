"""End to end on small data: one MLflow run per job, everything logged, a model registered."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import FAST, FAST_ROUNDS, assert_complete_run
from mlflow import MlflowClient

from {{ cookiecutter.package_name }} import report
from {{ cookiecutter.package_name }}.config import PROJECT_ROOT
from {{ cookiecutter.package_name }}.data import DataError
from {{ cookiecutter.package_name }}.job import run_job
from {{ cookiecutter.package_name }}.settings import composed
from {{ cookiecutter.package_name }}.stages.evaluate import evaluate
from {{ cookiecutter.package_name }}.stages.prepare import prepare
from {{ cookiecutter.package_name }}.stages.train import train

pytestmark = pytest.mark.e2e


def _no_stray_mlruns(*roots: Path) -> None:
    for root in roots:
        assert not (root / "mlruns").exists(), f"stray mlruns/ in {root}"
{%- if cookiecutter.model_library == "xgboost" %}


@pytest.mark.parametrize(
    ("overrides", "rounds"), [(FAST, FAST_ROUNDS), (["model=logistic_regression"], None)]
)
{%- else %}


@pytest.mark.parametrize(("overrides", "rounds"), [(FAST, FAST_ROUNDS)])
{%- endif %}
def test_job_registers_a_challenger(
    workspace: Path, overrides: list[str], rounds: int | None
) -> None:
    cfg = composed(overrides)
    summary = run_job(cfg)

    assert_complete_run(summary.run_id, cfg, rounds)
    client = MlflowClient()
    version = client.get_model_version_by_alias(cfg.registry.model_name, "challenger")
    assert str(version.version) == summary.version
    assert version.run_id == summary.run_id
    loaded = mlflow.pyfunc.load_model(f"models:/{cfg.registry.model_name}@challenger")
    sample = pd.read_csv(workspace / cfg.data.raw_path).drop(columns=[cfg.data.target]).head(3)
    assert set(loaded.predict(sample)) <= {0, 1}
    assert (workspace / "mlartifacts").is_dir()
    _no_stray_mlruns(workspace, PROJECT_ROOT)


def test_a_logged_model_requires_the_locked_versions(workspace: Path) -> None:
    """The model's requirements.txt pins what uv.lock installed (on the CPU extra: the
    xgboost-cpu build, so a serving image carries no CUDA libraries)."""
    cfg = composed(FAST)
    summary = run_job(cfg)
    uri = f"models:/{cfg.registry.model_name}/{summary.version}"
    requirements = Path(mlflow.artifacts.download_artifacts(uri)) / "requirements.txt"
    pins = dict(line.split("==") for line in requirements.read_text().split())
    lock = tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())
    locked: dict[str, set[str]] = {}
    for package in lock["package"]:
        locked.setdefault(package["name"], set()).add(package["version"])
    assert pins and all(version in locked[name] for name, version in pins.items()), pins
{%- if cookiecutter.model_library == "xgboost" %}
    assert "xgboost-cpu" in pins and "xgboost" not in pins
{%- endif %}


def test_dvc_stages_share_one_run(workspace: Path) -> None:
    cfg = composed(FAST)
    prepare(cfg)
    train(cfg)
    assert "evaluated" not in json.loads(Path("models/run.json").read_text())  # `make run` checks
    summary = evaluate(cfg)

    produced = json.loads(Path("models/run.json").read_text())
    assert produced["run_id"] == summary.run_id and produced["evaluated"]
    assert_complete_run(summary.run_id, cfg, FAST_ROUNDS)
    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert metrics["test_auc"] == pytest.approx(summary.metrics["test_auc"])
    assert {p.name for p in Path("reports/plots").iterdir()} == {
        "roc.csv",
        "precision_recall.csv",
        "confusion.csv",
        "importance.csv",
    }
    runs = MlflowClient().search_runs([MlflowClient().get_run(summary.run_id).info.experiment_id])
    assert len(runs) == 1
    _no_stray_mlruns(workspace, PROJECT_ROOT)


def test_bad_data_fails_before_any_run(workspace: Path) -> None:
    cfg = composed(FAST)
    Path(cfg.data.raw_path).write_text("not,a,dataset\n" + "1,2,3\n" * cfg.data.min_rows)
    with pytest.raises(DataError, match="does not match"):
        run_job(cfg)
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


def test_failed_run_registers_nothing(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = composed(FAST)

    def evaluation_fails(*args: object) -> None:
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(report, "build", evaluation_fails)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        run_job(cfg)
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FAILED"
    assert MlflowClient().search_registered_models() == []
