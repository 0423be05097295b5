"""One tracked job: the whole pipeline in one MLflow run, from conf/ composed with Hydra.

`train` runs it (`python -m <package>.cli train key=value`); `mlflow run` calls it with the
MLproject's parameters and the run it created; Hydra's multirun (`train -m ...`) runs one job
per combination, each nested under the sweep's parent run (sweep.py).
"""

from __future__ import annotations

import logging
import math
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from . import report
from .commands import user_errors
from .config import CONF_DIR, Config, ConfigError
from .settings import from_container
from .steps import Summary, fit_and_log, publish, resolve
from .tracking.run import start_run
from .tracking.store import connect

log = logging.getLogger(__name__)

# Hydra's own flags; any other `--key value` pair is a parameter `mlflow run` appended.
HYDRA_FLAGS = {
    "--multirun", "--cfg", "--package", "--run", "--help", "--hydra-help", "--version",
    "--info", "--resolve", "--shell-completion", "--config-path", "--config-name",
    "--config-dir", "--experimental-rerun",
}  # fmt: skip


def run_job(cfg: Config) -> Summary:
    """Load and split the data, train, report and register, all in one run."""
    spec, backend = resolve(cfg)
    uri = connect(cfg)
    with backend.session():
        splits = backend.load_splits()
        with start_run(cfg, uri, spec.name) as run:
            model, model_uri = fit_and_log(cfg, backend, spec, splits, run)
            return publish(cfg, report.build(backend, spec, model, splits), model_uri, run)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def hydra_job(cfg: DictConfig) -> float:
    """The job on Hydra's composition; returns `objective.metric` (what sweeps optimise).

    In a sweep, a job that fails is logged and returns NaN (a failed trial): the sweep goes on.
    """
    try:
        typed = from_container(cfg)
        summary = run_job(typed)
        objective = summary.metrics.get(typed.objective.metric)
        if objective is None:
            raise ConfigError(
                f"objective.metric {typed.objective.metric!r} is not one of the run's metrics: "
                f"{sorted(summary.metrics)}"
            )
    except Exception as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            log.exception("job %s failed: %s", HydraConfig.get().job.num, err)
            return math.nan
        if not isinstance(err, user_errors()):
            raise
        log.error("error: %s", err)
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


def main(args: list[str]) -> int:
    """`train [overrides]`: Hydra parses the command line itself."""
    sys.argv = [f"{sys.argv[0]} train", *mlflow_params_to_overrides(args)]
    hydra_job()
    return 0
