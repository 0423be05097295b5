"""Make the baked project a git repository with a first commit (no network, no dvc or mlflow)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def init_repository() -> str:
    """Initialise git and commit the baked files; return a one-line report."""
    if shutil.which("git") is None:
        return "git not found: run `git init` yourself before `make setup`."
    top = _git("rev-parse", "--show-toplevel")
    if top.returncode == 0 and Path(top.stdout.strip()).resolve() == Path.cwd().resolve():
        return "Already a git repository: files left uncommitted."
    _git("init", "--quiet", "--initial-branch=main")
    _git("add", "--all")
    commit = _git("commit", "--quiet", "--message", "Initial commit from ml-template")
    if commit.returncode != 0:
        return (
            "git repository created, files staged but not committed "
            "(set git user.name and user.email, then `git commit`)."
        )
    return "git repository created with a first commit."


if __name__ == "__main__":
    print(init_repository(), file=sys.stderr)
