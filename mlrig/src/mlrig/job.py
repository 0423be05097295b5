"""The tracked job: the whole pipeline in one MLflow run, from conf/ composed with Hydra.

`train` runs it (`python -m <package>.cli train key=value`); `mlflow run` calls it with the
MLproject's parameters and the run it created; Hydra's multirun (`train -m ...`) runs one job
per combination, each nested under the sweep's parent run (`mlrig.sweep`).
"""

from __future__ import annotations

import logging
import math
import sys
from typing import TYPE_CHECKING

from .commands import one_line
from .config import Config, ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from .project import Project
    from .steps import Summary

log = logging.getLogger(__name__)
# The jobs of this process's multirun that failed (Hydra's basic launcher runs them here, one
# after the other): `main` then exits non-zero.
FAILED_JOBS: list[str] = []

# Hydra's own flags; any other `--key value` pair is a parameter `mlflow run` appended.
HYDRA_FLAGS = {
    "--multirun", "--cfg", "--package", "--run", "--help", "--hydra-help", "--version",
    "--info", "--resolve", "--shell-completion", "--config-path", "--config-name",
    "--config-dir", "--experimental-rerun",
}  # fmt: skip


def run_job(project: Project, cfg: Config, register: bool = True) -> Summary:
    """Load and split the data, train, report and register (unless not `register`), all in
    one run. (MLflow and the model's libraries are imported here: `train --help` needs none.)"""
    from .steps import train_and_register

    return train_and_register(project, cfg, register=register)


def hydra_job(project: Project, cfg: DictConfig) -> float:
    """The job on Hydra's composition; returns `objective.metric` (what sweeps optimise).

    In a sweep, a job that fails is logged and returns NaN (a failed trial): the sweep goes on.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        typed = project.from_container(cfg)
        summary = run_job(project, typed)
        objective = summary.metrics.get(typed.objective.metric)
        if objective is None:
            raise ConfigError(
                f"objective.metric {typed.objective.metric!r} is not one of the run's metrics: "
                f"{sorted(summary.metrics)}"
            )
    except Exception as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            number = HydraConfig.get().job.num
            line = one_line(err)  # a user error in one line; a bug with its traceback
            log.error("job %s failed: %s", number, line or err, exc_info=line is None)
            FAILED_JOBS.append(f"job {number} ({' '.join(HydraConfig.get().overrides.task)})")
            return math.nan
        line = one_line(err)
        if line is None:
            raise
        log.error("error: %s", line)
        raise SystemExit(2) from err
    print(summary)
    return objective


def mlflow_params_to_overrides(args: list[str]) -> list[str]:
    """Turn `--model.max_depth 4` (undeclared MLproject params) into `model.max_depth=4`."""
    overrides: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token.startswith("--") and "=" not in token and token not in HYDRA_FLAGS:
            value = next(tokens, None)
            if value is None:
                raise ConfigError(f"parameter {token} has no value")
            overrides.append(f"{token[2:]}={value}")
        else:
            overrides.append(token)
    return overrides


def main(project: Project, args: list[str]) -> int:
    """`train [overrides]`: Hydra parses the command line itself."""
    import hydra

    sys.argv = [f"{sys.argv[0]} train", *mlflow_params_to_overrides(args)]
    entry = hydra.main(config_path=str(project.conf_dir), config_name="config", version_base="1.3")
    FAILED_JOBS.clear()
    entry(lambda cfg: hydra_job(project, cfg))()
    if FAILED_JOBS:
        print(f"error: {len(FAILED_JOBS)} job(s) of the sweep failed: {'; '.join(FAILED_JOBS)}")
        return 1
    return 0
