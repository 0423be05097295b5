"""compute=dask: XGBoost on a Dask cluster over partitioned synthetic data, logged and
registered like the local path; the model loads with the plain xgboost flavor."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import xgboost
from dask.distributed import LocalCluster
from mlflow import MlflowClient
from xgboost import XGBClassifier

from {{ cookiecutter.package_name }} import data, pipeline
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ConfigError, compose, from_container
from {{ cookiecutter.package_name }}.train import xgboost_params

pytestmark = pytest.mark.e2e
ROWS = 20_000
CUDA_BUILD = bool(xgboost.build_info().get("USE_CUDA"))
DASK = [
    "compute=dask",
    "data=synthetic",
    f"data.synthetic.n_rows={ROWS}",
    "data.synthetic.partition_rows=5000",
    "model.n_estimators=15",
    "model.early_stopping_rounds=0",
]


def test_synthetic_data_is_deterministic_and_partitioned(tmp_path: Path) -> None:
    cfg = from_container(compose(DASK))
    first = data.synthesize(tmp_path / "a", cfg.data.synthetic, cfg.data.features, "target")
    second = data.synthesize(tmp_path / "b", cfg.data.synthetic, cfg.data.features, "target")
    assert len(list(first.glob("*.parquet"))) == 4
    frame = pd.read_parquet(first)
    pd.testing.assert_frame_equal(frame, pd.read_parquet(second))
    assert frame.shape == (ROWS, len(cfg.data.features) + 1)
    assert {str(t) for t in frame[cfg.data.features].dtypes} == {"float32"}
    assert 0.2 < frame["target"].mean() < 0.8


def test_dask_job_trains_logs_and_registers(workspace: Path) -> None:
    assert main(["data", *DASK]) == 0
    cfg = from_container(compose(DASK))
    summary = pipeline.run_job(cfg)

    client = MlflowClient()
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["compute.kind"] == "dask"
    assert run.data.metrics["test_auc"] > 0.8
    history = client.get_metric_history(summary.run_id, "iter_valid_auc")
    assert [m.step for m in history] == list(range(15))
    (training,) = [i for i in run.inputs.dataset_inputs if i.dataset.name == "synthetic-training"]
    rows = json.loads(training.dataset.profile)["num_rows"]
    assert 0.5 * ROWS < rows < 0.7 * ROWS  # the whole split, not the sample that described it

    uri = f"models:/{cfg.registry.model_name}@challenger"
    assert client.get_model_version_by_alias(cfg.registry.model_name, "challenger").run_id == (
        summary.run_id
    )
    model = mlflow.xgboost.load_model(uri)
    assert isinstance(model, XGBClassifier)
    features = pd.read_parquet(cfg.data.raw_path).head(5)[cfg.data.features]
    assert set(model.predict(features)) <= {0, 1}


def test_dvc_stages_on_an_existing_scheduler(workspace: Path) -> None:
    """`compute.scheduler_address`: the stages use a running cluster instead of their own."""
    with LocalCluster(n_workers=1, threads_per_worker=2, dashboard_address=None) as running:
        cfg = from_container(
            compose([*DASK, f"compute.scheduler_address={running.scheduler_address}"])
        )
        data.fetch(cfg.data)
        pipeline.stage_prepare(cfg)
        parts = {p.name: len(list(p.glob("*.parquet"))) for p in Path("data/processed").iterdir()}
        assert parts == {"train": 4, "valid": 4, "test": 4}
        pipeline.stage_train(cfg)
        summary = pipeline.stage_evaluate(cfg)
    assert summary.version == "1"
    assert json.loads(Path("reports/metrics.json").read_text())["test_auc"] > 0.8


def test_dask_refuses_models_it_cannot_train() -> None:
    with pytest.raises(ConfigError, match="compute=dask trains XGBoost models only"):
        from_container(compose(["compute=dask", "model=logistic_regression"]))


def test_device_reaches_xgboost_and_is_validated() -> None:
    cfg = from_container(compose(["model.device=cuda:1"]))
    assert xgboost_params(cfg.model, cfg.seed)["device"] == "cuda:1"
    with pytest.raises(ConfigError, match=r"model\.device must be cpu, cuda"):
        from_container(compose(["model.device=gpu"]))


@pytest.mark.skipif(CUDA_BUILD, reason="the CUDA build of xgboost accepts model.device=cuda")
def test_cuda_on_the_cpu_build_is_refused_before_any_run(workspace: Path) -> None:
    """`make setup` installs xgboost-cpu: asking for a GPU fails fast and says what to do."""
    with pytest.raises(ConfigError, match="make setup XGBOOST=cuda"):
        pipeline.run_job(from_container(compose(["model.device=cuda"])))
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
