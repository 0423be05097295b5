"""Hydra multirun: one parent MLflow run per sweep, each job's run nested under it.

Registered as a Hydra callback in the project's conf/config.yaml (`package`: the project's
package, whose `project.PROJECT` it loads). Before any job starts, the parent run is created
(which also creates or migrates an embedded sqlite store once, so parallel jobs never race on
it); the jobs nest under it. When the sweep ends, the parent records the best child by
`objective.metric` and how many children failed.
"""

from __future__ import annotations

import importlib
import logging
import math
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from .config import Config
from .pruning import PRUNED_TAG
from .tracking.delivery import metric_points
from .tracking.lineage import lineage_tags
from .tracking.run import nested_under
from .tracking.store import Tracking

if TYPE_CHECKING:
    from .project import Project

log = logging.getLogger(__name__)


def job_config(project: Project, config: DictConfig) -> Config:
    """The sweep's base configuration without Hydra's own node."""
    return project.from_container(
        OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    )


class SweepParent(Callback):
    def __init__(self, package: str) -> None:
        self.project: Project = importlib.import_module(f"{package}.project").PROJECT
        self.nesting = ExitStack()
        self.parent: str | None = None
        self.jobs = 0

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.jobs += 1

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        cfg = job_config(self.project, config)
        tracking = Tracking.connect(cfg, self.project.root)
        experiment_id = tracking.ensure_experiment()
        overrides = " ".join(OmegaConf.to_container(config.hydra.overrides.task))
        tags = {**lineage_tags(cfg), "sweep.overrides": overrides}
        tags["sweep.sweeper"] = config.hydra.sweeper._target_.rsplit(".", 1)[-1]
        run_name = tracking.next_run_name(experiment_id, "sweep")
        run = tracking.client.create_run(experiment_id, run_name=run_name, tags=tags)
        self.parent = run.info.run_id
        self.nesting.enter_context(nested_under(self.parent))
        log.info("Sweep parent run %s (%s)", run.info.run_name, run.info.run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.nesting.close()
        cfg = job_config(self.project, config)
        assert self.parent is not None
        tracking = Tracking.connect(cfg, self.project.root)
        print(record_best(tracking, cfg, self.parent, jobs=self.jobs))


def record_best(tracking: Tracking, cfg: Config, parent_id: str, jobs: int | None = None) -> str:
    """Tag the parent with its best child, log the best value, end it; return a summary.
    Failed: the children without a result, or of `jobs` launched, those without one (a job
    can fail before its run exists)."""
    from mlflow.entities import RunTag

    client = tracking.client
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
    pruned = sum(run.data.tags.get(PRUNED_TAG) == "PRUNED" for run in children)
    failed = (len(children) if jobs is None else max(jobs, len(children))) - len(scored) - pruned
    tags = [RunTag("sweep.children", str(len(children))), RunTag("sweep.failed", str(failed)),
            RunTag("sweep.pruned", str(pruned))]  # fmt: skip
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
        f"Sweep {parent.info.run_name}: {len(scored)} finished, {failed} failed"
        f"{f', {pruned} pruned' if pruned else ''}; "
        f"best {metric}={value:.4f} in {best.info.run_name} ({best.info.run_id})"
    )
