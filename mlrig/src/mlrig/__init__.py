"""mlrig: the machinery of an ml-template project, installed rather than copied.

A project brings its model kinds, its data producers and its report (`Project`); the library
runs everything around them: configuration (Hydra, params.yaml), DVC stages, MLflow tracking
that survives a lost server, the registry gate and promotion by alias, sweeps and Optuna
studies, Dask training, serving and the doctor. What a project may import is listed in
`__all__`; everything else is private (the project's import-linter contract says so).
"""

from importlib.metadata import version

from .commands import Command
from .config import Config, ConfigError, DataConfig, ModelParams, ProducerParams, check
from .data import DataError, Producer
from .errors import ProjectError
from .models.base import Labelled, ModelSpec, TrainResult
from .models.sklearn import SklearnModel
from .models.xgboost import XGBoostModel
from .project import Project
from .report import Evaluated, Report, Scored
from .workbench import connect, last_run, load_model, pipeline_config

__version__ = version("mlrig")

__all__ = [
    "Command",
    "Config",
    "ConfigError",
    "DataConfig",
    "DataError",
    "Evaluated",
    "Labelled",
    "ModelParams",
    "ModelSpec",
    "Producer",
    "ProducerParams",
    "Project",
    "ProjectError",
    "Report",
    "Scored",
    "SklearnModel",
    "TrainResult",
    "XGBoostModel",
    "__version__",
    "check",
    "connect",
    "last_run",
    "load_model",
    "main",
    "pipeline_config",
    "stage",
    "webhook_commands",
]


def main(project: Project, argv: list[str] | None = None) -> int:
    """The project's command line (`python -m <package>.cli <command>`)."""
    from . import cli

    return cli.main(project, argv)


def stage(project: Project, name: str) -> None:
    """Run the DVC stage `name` (`prepare` or `train`) on params.yaml; exits the process."""
    from . import stages

    stages.main(project, {"prepare": stages.prepare, "train": stages.train}[name])


def webhook_commands() -> dict[str, Command]:
    """`webhook-register` and `webhook-receive`, for a project whose registry events start
    its promotion workflow (the receiver is also the `mlrig-webhooks` command)."""
    from .webhooks import COMMANDS

    return dict(COMMANDS)
