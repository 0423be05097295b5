"""Upgrading the machinery: a project baked from the template's git repository installs mlrig
from that repository at the commit it was baked from. When the template moves on (a library
that behaves differently), `cruft update` moves the commit, `make lock setup run` installs the
new library and re-runs the pipeline (uv.lock is a dependency of every stage), and the new
behaviour shows in the run; a teammate's clone installs the same library from the lock."""

from __future__ import annotations

import json
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from conftest import TEMPLATE, project_env, sh

pytestmark = pytest.mark.slow
CRUFT = str(Path(sys.executable).with_name("cruft"))
LINEAGE = Path("mlrig/src/mlrig/tracking/lineage.py")
MARKED = '    tags["mlrig.version"] = version("mlrig")'


def snapshot(repo: Path) -> None:
    """This template's working tree (what git would track) as a repository of its own."""
    listed = sh(TEMPLATE, "git", "ls-files", "--cached", "--others", "--exclude-standard")
    for name in listed.splitlines():
        if (TEMPLATE / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE / name, repo / name)
    sh(repo, "git", "init", "--quiet", "--initial-branch=main")
    commit(repo, "older template")


def commit(repo: Path, message: str) -> str:
    sh(repo, "git", "add", "--all")
    sh(repo, "git", "commit", "--quiet", "--message", message)
    return sh(repo, "git", "rev-parse", "HEAD").strip()


def newer_library(repo: Path) -> str:
    """A later template commit whose library tags every run with one more tag, released as
    the next patch version."""
    lineage = repo / LINEAGE
    text = lineage.read_text()
    assert MARKED in text
    lineage.write_text(text.replace(MARKED, f'{MARKED}\n    tags["upgraded"] = "yes"'))
    pyproject = repo / "mlrig" / "pyproject.toml"
    version = tomllib.loads(pyproject.read_text())["project"]["version"]
    major, minor, patch = map(int, version.split("."))
    bumped = f"{major}.{minor}.{patch + 1}"
    text = pyproject.read_text()
    pyproject.write_text(text.replace(f'version = "{version}"', f'version = "{bumped}"', 1))
    return bumped


def library_line(project: Path) -> str:
    """How the project's venv has mlrig installed (`uv pip freeze`)."""
    frozen = sh(project, ".uv/bin/uv", "pip", "freeze", "--python", ".venv/bin/python")
    return next(line for line in frozen.splitlines() if line.startswith("mlrig"))


def last_run_tags(project: Path) -> dict[str, str]:
    script = (
        "import json, mlflow; from mlflow import MlflowClient; "
        "c = MlflowClient('sqlite:///mlflow.db'); "
        "r = c.search_runs(['0'], order_by=['attributes.start_time DESC'], max_results=1)[0]; "
        "print(json.dumps(r.data.tags))"
    )
    return json.loads(sh(project, ".venv/bin/python", "-c", script).strip().splitlines()[-1])


def bake_from_a_repository(tmp_path: Path, prefix: str = "") -> tuple[Path, Path, Path]:
    """This template as a repository and a bare clone of it (its remote), and a project baked
    from `<prefix><the remote's file:// URL>`: (repository, remote, project)."""
    repo, remote = tmp_path / "template", tmp_path / "template.git"
    repo.mkdir()
    snapshot(repo)
    sh(tmp_path, "git", "clone", "--quiet", "--bare", str(repo), str(remote))
    config = tmp_path / "cookiecutter.yaml"  # clones go here, not to ~/.cookiecutters
    config.write_text(f"cookiecutters_dir: {tmp_path / 'clones'}\nreplay_dir: {tmp_path}\n")
    baked = cookiecutter(
        f"{prefix}{remote.as_uri()}", no_input=True, output_dir=str(tmp_path / "out"),
        config_file=str(config),
    )  # fmt: skip
    return repo, remote, Path(baked)


def test_cruft_update_and_make_lock_upgrade_the_library(tmp_path: Path) -> None:
    repo, remote, project = bake_from_a_repository(tmp_path)
    older = json.loads((project / ".cruft.json").read_text())["commit"]
    source = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["uv"]["sources"]
    assert source["mlrig"] == {"git": remote.as_uri(), "rev": older, "subdirectory": "mlrig"}

    sh(project, "make", "setup", "run")
    assert f"git+{remote.as_uri()}@{older}" in library_line(project)
    before = last_run_tags(project)
    assert "upgraded" not in before
    commit(project, "lock, pipeline, first run")

    bumped = newer_library(repo)
    newer = commit(repo, "newer library")
    sh(repo, "git", "push", "--quiet", str(remote), "main")
    sh(project, CRUFT, "update", "--skip-apply-ask")
    assert f'rev = "{newer}"' in (project / "pyproject.toml").read_text()
    commit(project, "template update")

    out = sh(project, "make", "lock", "setup", "run")
    for stage in ("prepare", "train"):  # uv.lock changed: the pipeline is stale
        assert f"Running stage '{stage}'" in out, out[-3000:]
    assert f"git+{remote.as_uri()}@{newer}" in library_line(project)
    after = last_run_tags(project)
    assert (after["upgraded"], after["mlrig.version"]) == ("yes", bumped)
    assert before["mlrig.version"] != bumped
    commit(project, "library upgraded")

    teammate = tmp_path / "teammate"
    sh(tmp_path, "git", "clone", "--quiet", str(project), str(teammate))
    sh(teammate, "make", "setup", env=project_env(teammate))
    assert library_line(teammate) == library_line(project)
    locked = tomllib.loads((teammate / "uv.lock").read_text())["package"]
    assert [p["version"] for p in locked if p["name"] == "mlrig"] == [bumped]


@pytest.mark.parametrize("prefix", ["git+", ""])
def test_a_bake_from_a_url_records_a_source_cruft_can_use(tmp_path: Path, prefix: str) -> None:
    """Baked from `git+file://…` or `file://…` (the offline forms of `git+https://…` and
    `https://…`), the project's .cruft.json names a repository git clones: `cruft check`
    runs and finds the project up to date."""
    _, remote, project = bake_from_a_repository(tmp_path, prefix)
    state = json.loads((project / ".cruft.json").read_text())
    assert state["template"] == remote.as_uri()
    assert "up to date" in sh(project, CRUFT, "check")
