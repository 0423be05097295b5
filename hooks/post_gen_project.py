"""Prune the folders that options left empty, record the answers for template updates, then
make the baked project a git repository with a first commit (no network, no dvc or mlflow)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Rendered by cookiecutter; tests import this module unrendered and call the functions directly.
ANSWERS_JSON = r"""{{ cookiecutter | tojson }}"""
STATE_FILE = ".cruft.json"
URL_RE = re.compile(r"^([a-z][a-z0-9+.-]*://|git@|gh:|gl:|bb:)")


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def prune_empty_folders() -> None:
    """Remove folders left empty: optional files have conditional names that render empty,
    which cookiecutter skips, but it has made their folders already."""
    for folder in sorted(Path.cwd().rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and ".git" not in folder.parts and not any(folder.iterdir()):
            folder.rmdir()


def _template_source(template: str) -> str:
    """Where the template came from: a URL as given, a local folder made absolute (hooks run
    inside the new project; PWD is where cookiecutter was started)."""
    if URL_RE.match(template):
        from cookiecutter.config import BUILTIN_ABBREVIATIONS  # hooks run on cookiecutter's Python
        from cookiecutter.repository import expand_abbreviations

        return expand_abbreviations(template, BUILTIN_ABBREVIATIONS)
    if not template or Path(template).is_absolute():
        return template
    return str((Path(os.environ.get("PWD", ".")) / template).resolve())


def record_answers(answers: dict[str, object]) -> Path:
    """Write the template, its commit and the answers in cruft's format, so `cruft update`
    brings later template changes into a project baked by cookiecutter as well as by cruft."""
    source = _template_source(str(answers.get("_template", "")))
    repo_dir = str(answers.get("_repo_dir", "")) or source
    head = _git("-C", _template_source(repo_dir), "rev-parse", "HEAD")
    state = {
        "template": source,
        "commit": head.stdout.strip() if head.returncode == 0 else None,
        "checkout": answers.get("_checkout"),
        "context": {"cookiecutter": {k: v for k, v in answers.items() if not k.startswith("_")}},
        "directory": None,
    }
    path = Path(STATE_FILE)
    path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    return path


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
    prune_empty_folders()
    record_answers(json.loads(ANSWERS_JSON))
    print(init_repository(), file=sys.stderr)
