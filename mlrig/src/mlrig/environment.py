"""The project's `.env` (git-ignored; `.env.example` lists what it may hold): settings and
secrets for the project's commands, loaded without overriding the environment. It is
configuration, not an environment: only the settings below are read from it (a `.env` that
reaches a checkout could otherwise set anything, `GIT_CONFIG_*` that runs commands among
them) and `${VAR}` in it is text, a `.env` that git tracks is refused, and credentials from
the environment or a credentials file going to a server that `.env` named are said in the
first lines. `doctor` says where each setting came from.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .errors import ProjectError

ENV_FILE = ".env"
# What .env may set, and what `doctor` reports (secrets by origin only, never by value).
SETTINGS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "MONITOR_WEBHOOK_URL",  # `score`'s alerts (monitor.alert.webhook_env): a secret URL
)
# Where each server setting sends credentials from the environment (or a file), when .env
# names that server.
SENT_TO = {
    "MLFLOW_TRACKING_URI": (
        ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"),
        Path("~/.mlflow/credentials"),
    ),
    "MLFLOW_S3_ENDPOINT_URL": (
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
        Path("~/.aws/credentials"),
    ),
}
_from_file: dict[str, str] = {}  # what load() set


class DotEnvError(ProjectError):
    """The project's .env cannot be used; the message says what to do."""


def tracked(path: Path) -> bool:
    """Whether git tracks `path` (outside a repository, or without git: no); any other answer
    from git (a repository it refuses to read, say) is an error: the check fails closed."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--error-unmatch", "--", path.name],
            cwd=path.parent, capture_output=True, text=True, check=False,
        )  # fmt: skip
    except OSError:
        return False
    if listed.returncode in (0, 1):
        return listed.returncode == 0
    if "not a git repository" in listed.stderr:
        return False
    raise DotEnvError(
        f"cannot tell whether git tracks {path} (a tracked .env is refused): "
        f"{listed.stderr.strip()}"
    )


def load(root: Path) -> list[str]:
    """Set each setting of `<root>/.env` that the environment does not already set; return
    the notes to print before anything else (what was ignored, where credentials go)."""
    path = root / ENV_FILE
    if not path.exists():
        return []
    if tracked(path):
        raise DotEnvError(
            f"{path} is tracked by git: a .env holds your own secrets and settings, and one "
            "that came with a checkout is someone else's. `git rm --cached .env` (the file "
            "stays, git-ignored), commit, and change any secret it held"
        )
    from dotenv import dotenv_values

    values = dotenv_values(path, interpolate=False)  # ${VAR} is text: never another's value
    for name in SETTINGS:
        value = values.get(name)
        if name not in os.environ and value is not None:
            os.environ[name] = _from_file[name] = value
    notes = []
    ignored = sorted(name for name in values if name not in SETTINGS)
    if ignored:
        notes.append(
            f"note: {path} sets {', '.join(ignored)}: not settings of this project, ignored "
            "(`make doctor` lists them)"
        )
    for server, (credentials, file) in SENT_TO.items():
        sent = [name for name in credentials if origin(name) == "environment"]
        sent += [str(file)] if file.expanduser().is_file() else []
        if origin(server) == ".env" and sent:
            notes.append(
                f"note: {server}={os.environ[server]} comes from {path}; your credentials in "
                f"{', '.join(sent)} go to it"
            )
    return notes


def origin(name: str) -> str:
    """Where a setting's value comes from: `.env`, the environment, or nowhere."""
    if name in _from_file and os.environ.get(name) == _from_file[name]:
        return ".env"
    return "environment" if name in os.environ else "unset"


def configure(root: Path) -> None:
    """Read the project's .env (`load`); its notes are the first lines of the output."""
    for note in load(root):
        print(note, file=sys.stderr, flush=True)
