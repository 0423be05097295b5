"""The project's `.env` (git-ignored; `.env.example` lists what it may hold): settings and
secrets for the project's commands, loaded without overriding the environment. `doctor` says
where each setting came from."""

from __future__ import annotations

import os
from pathlib import Path

ENV_FILE = ".env"
# The settings `doctor` reports (secrets by origin only, never by value).
SETTINGS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "CI",
)
_from_file: dict[str, str] = {}  # what load() set


def load(root: Path) -> None:
    """Set each variable of `<root>/.env` that the environment does not already set."""
    path = root / ENV_FILE
    if not path.exists():
        return
    from dotenv import dotenv_values

    for name, value in dotenv_values(path).items():
        if name not in os.environ and value is not None:
            os.environ[name] = _from_file[name] = value


def origin(name: str) -> str:
    """Where a setting's value comes from: `.env`, the environment, or nowhere."""
    if name in _from_file and os.environ.get(name) == _from_file[name]:
        return ".env"
    return "environment" if name in os.environ else "unset"
