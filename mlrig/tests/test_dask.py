"""compute=dask: XGBoost on a Dask cluster over partitioned synthetic data, logged and
registered like the local path; the model loads with the plain xgboost flavor."""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import xgboost
from mlflow import MlflowClient
from xgboost import XGBClassifier

import mlrig
from mlrig import ConfigError, Project
from mlrig.backends import backend_for
from mlrig.data import fetch
from mlrig.job import run_job
from mlrig.stages import prepare, train

pytestmark = pytest.mark.slow
distributed = pytest.importorskip("dask.distributed", reason="compute=dask: the `dask` extra")
dd = pytest.importorskip("dask.dataframe")
ROWS = 20_000
CUDA_BUILD = bool(xgboost.build_info().get("USE_CUDA"))
DASK = [
    "compute=dask",
    "data=partitions",
    f"data.producer.rows={ROWS}",
    "data.producer.partition_rows=5000",
    "model=boosted",
    "model.n_estimators=15",
]


# A worker preload that writes, as the worker closes, which of the job's own libraries it
# imported: a worker imports what it trains with, not the tracking or plotting the job does.
WORKER_REPORT = """
import json, sys
def dask_teardown(worker):
    job_only = ("mlflow", "matplotlib", "sqlalchemy", "alembic", "hydra", "optuna", "git")
    with open({out!r}, "w") as out:
        json.dump([name for name in job_only if name in sys.modules], out)
"""


def test_dask_job_trains_logs_and_registers(project: Project, workspace: Path) -> None:
    import dask

    assert mlrig.main(project, ["data", *DASK]) == 0
    cfg = project.composed(DASK)
    preload, report = workspace / "worker_report.py", workspace / "worker_imports.json"
    preload.write_text(WORKER_REPORT.format(out=str(report)))
    with dask.config.set({"distributed.worker.preload": [str(preload)]}):
        summary = run_job(project, cfg)
    assert json.loads(report.read_text()) == []

    client = MlflowClient()
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["compute.kind"] == "dask"
    assert run.data.metrics["test_auc"] > 0.8
    history = client.get_metric_history(summary.run_id, "iter_valid_auc")
    assert [m.step for m in history] == list(range(15))
    (training,) = [i for i in run.inputs.dataset_inputs if i.dataset.name == "partitions-training"]
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


def test_two_workers_train_one_model_in_the_collective_and_stop_early(
    project: Project, workspace: Path
) -> None:
    """Two worker processes each stream their partitions and train together: rank 0's history
    and booster are logged, early stopping's best round included."""
    two = [*DASK, "compute.n_workers=2", "compute.threads_per_worker=1"]
    assert mlrig.main(project, ["data", *two]) == 0
    cfg = project.composed([*two, "model.n_estimators=200", "model.early_stopping_rounds=3"])
    summary = run_job(project, cfg)

    client = MlflowClient()
    run = client.get_run(summary.run_id)
    assert run.data.metrics["test_auc"] > 0.8
    rounds = len(client.get_metric_history(summary.run_id, "iter_valid_auc"))
    best = int(run.data.metrics["best_iteration"])
    assert best + 3 < rounds < 200  # stopped three rounds after the best one
    model = mlflow.xgboost.load_model(f"models:/{cfg.registry.model_name}@challenger")
    assert model.get_booster().num_boosted_rounds() == rounds


def test_partitions_are_dealt_round_robin_to_at_most_as_many_workers() -> None:
    from mlrig.models.xgboost_dask import deal

    frame = pd.DataFrame({"x": range(10), "y": range(10)})
    train, valid = dd.from_pandas(frame, npartitions=5), dd.from_pandas(frame, npartitions=2)
    shares = deal(["tcp://a", "tcp://b", "tcp://c"], train, valid)
    # The valid split has only two partitions, so two workers.
    assert [(share.address, share.rank) for share in shares] == [("tcp://a", 0), ("tcp://b", 1)]
    rows = [[[len(p.compute()) for p in parts] for parts in (s.train, s.valid)] for s in shares]
    assert rows == [[[2, 2, 2], [5]], [[2, 2], [5]]]


def test_a_worker_lost_while_training_fails_the_job_instead_of_hanging(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that dies (out of memory, say) comes back under a new address: the job fails
    and says so, where its rank's task, pinned to the old address, would wait for ever."""
    from mlrig.models.xgboost_dask import fit

    monkeypatch.chdir(tmp_path)
    cfg = project.composed(DASK)
    fetch(project, cfg.data)
    splits = dd.read_parquet(cfg.data.raw_path).random_split([0.8, 0.2], random_state=0)
    arguments = project.spec(cfg.model).arguments(cfg.model, cfg.seed)
    settings = XGBClassifier(**arguments).get_xgb_params()
    outcome: queue.Queue[BaseException | None] = queue.Queue()

    def job(client: distributed.Client) -> None:
        try:
            names = ("train", "valid")
            fit(
                client, settings, 1_000_000, None, tuple(splits), cfg.data.features, "target", names
            )
        except Exception as error:  # the test inspects it
            outcome.put(error)
        else:
            outcome.put(None)

    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as c,
        distributed.Client(c) as client,
    ):
        (pid,) = client.run(os.getpid).values()
        threading.Thread(target=job, args=(client,), daemon=True).start()
        deadline = time.monotonic() + 60
        while not any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # into the boosting rounds
        os.kill(pid, signal.SIGKILL)
        error = outcome.get(timeout=30)
    assert isinstance(error, RuntimeError), error
    assert "left the cluster while training" in str(error)


def test_dvc_stages_on_an_existing_scheduler(project: Project, workspace: Path) -> None:
    """`compute.scheduler_address`: the stages use a running cluster instead of their own."""
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as running:
        address = f"compute.scheduler_address={running.scheduler_address}"
        cfg = project.composed([*DASK, address])
        fetch(project, cfg.data)
        prepare(project, cfg)
        parts = {p.name: len(list(p.glob("*.parquet"))) for p in Path("data/processed").iterdir()}
        assert parts == {"train": 4, "valid": 4, "test": 4}
        summary = train(project, cfg)
    assert summary.version == "1"
    assert json.loads(Path("reports/metrics.json").read_text())["test_auc"] > 0.8


def test_the_local_cluster_is_one_worker_whose_arrow_memory_goes_back_to_malloc(
    project: Project,
) -> None:
    """The default cluster: one worker process with two threads, started with Arrow's
    system pool (what it frees after a Parquet read is not kept in Arrow's own pool)."""

    def arrow_pool() -> str:
        import pyarrow

        return pyarrow.default_memory_pool().backend_name

    with backend_for(project, project.composed(DASK)).session() as client:
        assert list(client.nthreads().values()) == [2]
        assert list(client.run(arrow_pool).values()) == ["system"]


def test_dask_refuses_models_it_cannot_train(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"compute=dask cannot train model\.kind=linear"):
        project.composed(["compute=dask", "model=linear"])


@pytest.mark.skipif(CUDA_BUILD, reason="the CUDA build of xgboost accepts model.device=cuda")
def test_cuda_on_the_cpu_build_is_refused_before_any_run(project: Project, workspace: Path) -> None:
    """`make setup` installs xgboost-cpu: asking for a GPU fails fast and says what to do."""
    with pytest.raises(ConfigError, match="make setup XGBOOST=cuda"):
        run_job(project, project.composed(["model=boosted", "model.device=cuda"]))
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
