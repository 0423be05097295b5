"""What a notebook or a script of the project reaches for: MLflow connected as the project's
commands connect it, the newest training run, and a registered version's model -- loaded by
its native loader, as the untrusted input a registry file is. MLflow is imported on the first
call (`import mlrig` stays light)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import PARAMS_FILE
from .errors import ProjectError

if TYPE_CHECKING:
    from mlflow.entities import Run

    from .config import Config
    from .project import Project
    from .tracking.store import Tracking

RECENT = 100  # runs looked through for the newest training run


def connect(project: Project) -> str:
    """Point MLflow's fluent API where the project's commands track (MLFLOW_TRACKING_URI, or
    the embedded sqlite store, said in one log line); the URI."""
    return _tracking(project).uri


def last_run(project: Project) -> Run:
    """The project's newest finished training run: one that logged the objective's metric
    (not a scoring run, a sweep's parent or a failed job)."""
    cfg = pipeline_config(project)
    tracking = _tracking(project)
    experiment = tracking.experiment_id()
    runs = [] if experiment is None else tracking.client.search_runs(
        [experiment], "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"],
        max_results=RECENT,
    )  # fmt: skip
    for run in runs:
        if cfg.objective.metric in run.data.metrics:
            return run
    raise ProjectError(
        f"no finished training run in {tracking.uri} (experiment "
        f"{tracking.settings.experiment_name!r}): `make run` makes one"
    )


def load_model(project: Project, reference: str | int | None = None) -> Any:
    """The model of a version (a number) or an alias of the project's registered model, by
    default its champion: the native model (an XGBClassifier, a scikit-learn estimator),
    checked and read as `validate` and `score` read it, never unpickled."""
    from .models import registered
    from .registry import resolve

    cfg = pipeline_config(project)
    tracking = _tracking(project)
    name = cfg.registry.model_name
    chosen = cfg.registry.champion_alias if reference is None else str(reference)
    version = resolve(tracking, name, chosen, project.cli)
    uri = f"models:/{name}/{version.version}"
    return registered.load(project, uri, tracking.uri).model


def pipeline_config(project: Project) -> Config:
    """The configuration the pipeline runs with: the project's params.yaml, wherever the
    notebook runs (its folder, not the project's root, is a kernel's working directory)."""
    return project.load_params(project.root / PARAMS_FILE)


def _tracking(project: Project) -> Tracking:
    """As a command connects: the project's .env read first (the team server, its login)."""
    from .environment import configure
    from .tracking.store import Tracking

    configure(project.root)
    return Tracking.connect(pipeline_config(project), project.root)
