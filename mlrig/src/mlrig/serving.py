"""Serving: batch predictions with a registered model, and its Docker build context."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ProjectError
from .models import registered

if TYPE_CHECKING:
    from .project import Project
    from .tracking.store import Tracking


class InputError(ProjectError):
    """The input does not match the model's signature; says which columns."""


def predict_csv(
    project: Project,
    tracking: Tracking,
    model_uri: str,
    source: str | Path,
    destination: str | Path,
) -> int:
    """Score a CSV with a registered model (e.g. models:/name@champion); return the rows.

    The model is loaded as untrusted input (never by a loader its files name). Columns the
    signature does not know (an id, the label) are carried through unscored.
    """
    import pandas as pd

    loaded = registered.load(project, model_uri, tracking.uri)
    frame = pd.read_csv(source)
    required = loaded.inputs if loaded.inputs is not None else list(frame.columns)
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise InputError(
            f"{source} lacks columns the model signature of {model_uri} requires: {missing}"
        )
    features = frame[required]
    scored = frame.assign(
        prediction=loaded.model.predict(features),
        probability=loaded.spec.scores(loaded.model, features),
    )
    Path(destination).parent.mkdir(parents=True, exist_ok=True)
    scored.to_csv(destination, index=False)
    return len(scored)


def image_ref(repository: str, name: str, version: str) -> str:
    """The image reference for a model version, lowercase as OCI requires.

    e.g. ghcr.io/Org/Repo + my-model v3 -> ghcr.io/org/repo/my-model:v3
    """
    return f"{repository.rstrip('/')}/{name}:v{version}".lower()


def dockerfile(project: Project, tracking: Tracking, model_uri: str, output: str | Path) -> Path:
    """`mlflow models generate-dockerfile`: a build context serving `model_uri` on :8080, for
    a model that passes the untrusted-input checks (its format and its pinned environment)."""
    registered.load(project, model_uri, tracking.uri)
    subprocess.run(
        [sys.executable, "-m", "mlflow", "models", "generate-dockerfile",
         "--model-uri", model_uri, "--output-directory", str(output), "--env-manager", "local"],
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking.uri},
        check=True,
    )  # fmt: skip
    return Path(output) / "Dockerfile"
