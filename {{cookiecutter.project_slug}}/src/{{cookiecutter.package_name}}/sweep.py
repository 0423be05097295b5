"""Hydra multirun: one parent MLflow run per sweep, each job's run nested under it.

Registered as a Hydra callback in conf/config.yaml. Before any job starts, the parent run is
created (which also creates or migrates an embedded sqlite store once, so parallel jobs never
race on it); jobs find it through the environment. When the sweep ends, the parent records
the best child by `objective.metric` and how many children failed.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from hydra.experimental.callback import Callback
from mlflow import MlflowClient
from mlflow.entities import RunTag
from omegaconf import DictConfig, OmegaConf

from .config import Config
from .settings import from_container
from .tracking.delivery import metric_points
from .tracking.lineage import lineage_tags
from .tracking.run import PARENT_RUN_ENV
from .tracking.store import connect, ensure_experiment, next_run_name

log = logging.getLogger(__name__)


def job_config(config: DictConfig) -> Config:
    """The sweep's base configuration without Hydra's own node."""
    return from_container(OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]))


class SweepParent(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        cfg = job_config(config)
        uri = connect(cfg)
        experiment_id = ensure_experiment(cfg, uri)
        overrides = " ".join(OmegaConf.to_container(config.hydra.overrides.task))
        tags = {**lineage_tags(cfg), "sweep.overrides": overrides}
        tags["sweep.sweeper"] = config.hydra.sweeper._target_.rsplit(".", 1)[-1]
        run = MlflowClient().create_run(
            experiment_id, run_name=next_run_name(cfg, experiment_id, "sweep"), tags=tags
        )
        os.environ[PARENT_RUN_ENV] = run.info.run_id
        log.info("Sweep parent run %s (%s)", run.info.run_name, run.info.run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        parent = os.environ.pop(PARENT_RUN_ENV)
        print(record_best(job_config(config), parent))


def record_best(cfg: Config, parent_id: str) -> str:
    """Tag the parent with its best child, log the best value, end it; return a summary."""
    client = MlflowClient()
    parent = client.get_run(parent_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
        max_results=5000,
    )
    metric = cfg.objective.metric
    scored = [
        run
        for run in children
        if run.info.status == "FINISHED" and not math.isnan(run.data.metrics.get(metric, math.nan))
    ]
    failed = len(children) - len(scored)
    tags = [RunTag("sweep.children", str(len(children))), RunTag("sweep.failed", str(failed))]
    if not scored:
        client.log_batch(parent_id, tags=tags)
        client.set_terminated(parent_id, "FAILED")
        return f"Sweep {parent.info.run_name}: no child finished ({failed} failed)"
    pick = max if cfg.objective.direction == "maximize" else min
    best = pick(scored, key=lambda run: run.data.metrics[metric])
    value = best.data.metrics[metric]
    tags += [RunTag("best_run_id", best.info.run_id), RunTag("best_run_name", best.info.run_name)]
    client.log_batch(parent_id, metrics=metric_points({f"best_{metric}": value}), tags=tags)
    client.set_terminated(parent_id, "FINISHED")
    return (
        f"Sweep {parent.info.run_name}: {len(scored)} finished, {failed} failed; "
        f"best {metric}={value:.4f} in {best.info.run_name} ({best.info.run_id})"
    )
