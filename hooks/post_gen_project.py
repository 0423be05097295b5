"""Prune the folders that options left empty, record the answers for template updates, point
the project at the template's mlrig library (its git repository at this commit, or its folder
here), then make the baked project a git repository with a first commit (no network, no dvc
or mlflow)."""

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
LIBRARY = "mlrig"  # the template's folder that holds the library
# The lines of pyproject.toml and python_env.yaml that name where the library comes from.
SOURCE_LINE = re.compile(rf"^{LIBRARY} = .*$", re.MULTILINE)
REQUIREMENT_LINE = re.compile(rf"^  - {LIBRARY}\b.*$", re.MULTILINE)
SCP_LIKE = re.compile(r"^(?P<user>[\w.-]+)@(?P<host>[\w.-]+):(?P<path>.+)$")  # git@host:org/repo


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


def template_commit(answers: dict[str, object]) -> str | None:
    """The template commit being rendered: cruft says it (`_commit`, when it renders an old
    or a new commit to update a project); cookiecutter's checkout has it at HEAD."""
    if answers.get("_commit"):
        return str(answers["_commit"])
    source = _template_source(str(answers.get("_template", "")))
    repo_dir = str(answers.get("_repo_dir", "")) or source
    head = _git("-C", _template_source(repo_dir), "rev-parse", "HEAD")
    return head.stdout.strip() if head.returncode == 0 else None


def git_url(template: str) -> str:
    """A template URL as uv and pip clone it: `git+` dropped, `user@host:path` made ssh://."""
    url = template.removeprefix("git+")
    found = SCP_LIKE.match(url)
    return f"ssh://{found['user']}@{found['host']}/{found['path']}" if found else url


def library_source(template: str, commit: str | None) -> tuple[str, str]:
    """Where the baked project installs mlrig from: its pyproject.toml source (a uv inline
    table) and the pip requirement of python_env.yaml. A template baked from a URL is a git
    repository: the library at the rendered commit (refused without one); from a folder, that
    folder's copy."""
    if not URL_RE.match(template):
        folder = (Path(template) / LIBRARY).as_posix()
        return inline_table(path=folder), f"{LIBRARY} @ {Path(folder).as_uri()}"
    if not commit:
        raise SystemExit(
            f"post_gen: {template} is not a git repository whose commit could be read (an "
            "archive, say): the project would depend on whatever the library is when it "
            "installs. Bake from the template's git URL, or from a local clone of it."
        )
    url = git_url(template)
    table = inline_table(git=url, rev=commit, subdirectory=LIBRARY)
    return table, f"{LIBRARY} @ git+{url}@{commit}#subdirectory={LIBRARY}"


def inline_table(**fields: str) -> str:
    """A TOML inline table of strings (JSON's quoting is a TOML basic string's)."""
    return "{ " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in fields.items()) + " }"


def point_at_library(answers: dict[str, object], commit: str | None) -> None:
    """Write the library's source into pyproject.toml and python_env.yaml (their one line)."""
    table, requirement = library_source(_template_source(str(answers["_template"])), commit)
    for name, line, value in (
        ("pyproject.toml", SOURCE_LINE, f"{LIBRARY} = {table}"),
        ("python_env.yaml", REQUIREMENT_LINE, f"  - {requirement}"),
    ):
        path = Path(name)
        text, found = line.subn(lambda _, value=value: value, path.read_text(), count=1)
        if found != 1:
            raise SystemExit(f"post_gen: no `{LIBRARY}` line in {name} to point at the library")
        path.write_text(text)


def record_answers(answers: dict[str, object], commit: str | None) -> Path:
    """Write the template, its commit and the answers in cruft's format, so `cruft update`
    brings later template changes into a project baked by cookiecutter as well as by cruft."""
    source = _template_source(str(answers.get("_template", "")))
    state = {
        # cruft clones it with git: a `git+` URL as git clones it
        "template": git_url(source) if URL_RE.match(source) else source,
        "commit": commit,
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
    ANSWERS = json.loads(ANSWERS_JSON)
    COMMIT = template_commit(ANSWERS)
    point_at_library(ANSWERS, COMMIT)
    record_answers(ANSWERS, COMMIT)
    print(init_repository(), file=sys.stderr)
