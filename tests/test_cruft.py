"""Template updates: a project baked from an older template commit takes a later template change
with `cruft update`, keeping its own edits; plain cookiecutter bakes can be updated too."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from conftest import DEFAULT_SLUG, TEMPLATE

CRUFT = str(Path(sys.executable).with_name("cruft"))


def run(cwd: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if check:
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}{done.stderr}"
    return done


def commit(repo: Path, message: str) -> str:
    run(repo, "git", "add", "--all")
    run(repo, "git", "commit", "--quiet", "--message", message)
    return run(repo, "git", "rev-parse", "HEAD").stdout.strip()


@pytest.fixture
def template_repo(tmp_path: Path) -> tuple[Path, str]:
    """This template as a git repository of its own (the working tree's files), one commit."""
    repo = tmp_path / "template"
    listed = run(TEMPLATE, "git", "ls-files", "--cached", "--others", "--exclude-standard")
    for name in listed.stdout.splitlines():
        if (TEMPLATE / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE / name, repo / name)
    run(repo, "git", "init", "--quiet", "--initial-branch=main")
    return repo, commit(repo, "older template")


def change_template(repo: Path) -> str:
    """A later template commit: a new README section and a changed registry setting."""
    readme = repo / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text() + "\n## Changelog\n\nKept by `cruft update`.\n")
    registry = repo / "{{cookiecutter.project_slug}}" / "conf" / "registry" / "default.yaml"
    text = registry.read_text()
    registry.write_text(text.replace("lock_timeout_s: 60.0", "lock_timeout_s: 90.0"))
    return commit(repo, "newer template")


@pytest.mark.parametrize("baker", ["cruft create", "cookiecutter"])
def test_cruft_update_brings_template_changes_and_keeps_local_edits(
    template_repo: tuple[Path, str], tmp_path: Path, baker: str
) -> None:
    repo, older = template_repo
    out = tmp_path / "out"
    if baker == "cruft create":
        run(tmp_path, CRUFT, "create", str(repo), "--no-input", "--output-dir", str(out))
        project = out / DEFAULT_SLUG
        commit(project, "cruft's state")  # cruft writes .cruft.json after post_gen's commit
    else:
        project = Path(cookiecutter(str(repo), no_input=True, output_dir=str(out)))
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == older
    assert state["context"]["cookiecutter"]["project_slug"] == DEFAULT_SLUG

    # The team edits its project; the template moves on.
    model = project / "conf" / "model" / "xgboost.yaml"
    model.write_text(model.read_text().replace("max_depth: 4", "max_depth: 5"))
    commit(project, "deeper trees")
    newer = change_template(repo)
    assert run(project, CRUFT, "check", check=False).returncode != 0  # out of date

    run(project, CRUFT, "update", "--skip-apply-ask")
    assert "## Changelog" in (project / "README.md").read_text()
    assert "lock_timeout_s: 90.0" in (project / "conf/registry/default.yaml").read_text()
    assert "max_depth: 5" in model.read_text()
    assert not list(project.rglob("*.rej")), "conflicts"
    assert json.loads((project / ".cruft.json").read_text())["commit"] == newer
    run(project, CRUFT, "check")
    changed = run(project, "git", "status", "--porcelain").stdout.split("\n")
    assert sorted(line[3:] for line in changed if line) == [
        ".cruft.json",
        "README.md",
        "conf/registry/default.yaml",
    ]
