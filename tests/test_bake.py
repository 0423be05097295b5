"""Bakes: the exact file set, fully rendered, parseable, lint-clean, with hostile answers too."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import DEFAULT_SLUG

PACKAGE_FILES = [
    "__init__.py", "cli.py", "compute.py", "config.py", "data.py", "doctor.py", "evaluate.py",
    "models.py", "pipeline.py", "plots.py", "registry.py", "serving.py", "spool.py", "sweep.py",
    "tracking.py", "train.py", "validation.py", "webhooks.py",
]  # fmt: skip
EXPECTED_FILES = {
    ".dvc/.gitignore",
    ".github/workflows/ci.yml",
    ".github/workflows/promote.yml",
    ".dvc/config",
    ".dvcignore",
    ".gitignore",
    "LICENSE",
    "MLproject",
    "Makefile",
    "README.md",
    "conf/config.yaml",
    "conf/compute/dask.yaml",
    "conf/compute/local.yaml",
    "conf/data/breast_cancer.yaml",
    "conf/data/synthetic.yaml",
    "conf/hparams_search/xgboost_optuna.yaml",
    "conf/model/logistic_regression.yaml",
    "conf/model/xgboost.yaml",
    "conf/registry/default.yaml",
    "conf/tracking/default.yaml",
    "data/.gitignore",
    "deploy/tracking-server/.env.example",
    "deploy/tracking-server/Dockerfile",
    "deploy/tracking-server/basic_auth.ini",
    "deploy/tracking-server/docker-compose.yml",
    "deploy/tracking-server/mlflow.env.example",
    "deploy/tracking-server/mlflow.service",
    "data/raw/.gitignore",
    "data/raw/breast_cancer.csv.dvc",
    "dvc.yaml",
    "models/.gitignore",
    "params.yaml",
    "pyproject.toml",
    "python_env.yaml",
    "tests/conftest.py",
    "tests/team_server.py",
    "tests/test_config.py",
    "tests/test_compute.py",
    "tests/test_data.py",
    "tests/test_pipeline.py",
    "tests/test_promotion.py",
    "tests/test_serving.py",
    "tests/test_spool.py",
    "tests/test_sweep.py",
    "tests/test_team_server.py",
    "tests/test_tracking.py",
    "tests/test_webhooks.py",
}
# Leftover Jinja in either spacing; `${...}` (Hydra, DVC) and `${{` are legitimate.
JINJA = re.compile(r"(?<!\$)\{\{|\{%|\{#")
HOSTILE = {
    "project_name": 'Bob\'s "Quoted" Model: v2 # not a comment',
    "description": "It's a \"test\" \\ with: colons, #hashes and 'quotes'",
    "author": 'O\'Brien & "Sons"',
}


def files_of(project: Path) -> set[str]:
    return {
        p.relative_to(project).as_posix()
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }


def check_rendered_and_parseable(project: Path) -> None:
    for path in project.rglob("*"):
        if not path.is_file() or ".git" in path.relative_to(project).parts:
            continue
        text = path.read_text()
        assert not JINJA.search(text), f"leftover Jinja in {path.relative_to(project)}"
        if path.suffix in (".yaml", ".yml", ".dvc") or path.name == "MLproject":
            yaml.safe_load(text)
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix == ".py":
            compile(text, str(path), "exec")


def ruff(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
        cwd=project,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def default_bake(cookies_session):
    result = cookies_session.bake()
    assert result.exit_code == 0, result.exception
    return Path(result.project_path)


def test_default_bake_has_exactly_the_expected_files(default_bake: Path) -> None:
    assert default_bake.name == DEFAULT_SLUG
    package = {f"src/tumor_classifier/{name}" for name in PACKAGE_FILES}
    assert files_of(default_bake) == EXPECTED_FILES | package


def test_default_bake_is_rendered_and_parses(default_bake: Path) -> None:
    check_rendered_and_parseable(default_bake)


def test_default_bake_is_ruff_clean(default_bake: Path) -> None:
    check = ruff(default_bake, "check")
    assert check.returncode == 0, check.stdout
    formatted = ruff(default_bake, "format", "--check")
    assert formatted.returncode == 0, formatted.stdout


def test_default_bake_is_committed(default_bake: Path) -> None:
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=default_bake, capture_output=True, text=True
    )
    assert status.returncode == 0 and status.stdout == ""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=default_bake, capture_output=True, text=True, check=True
    )
    assert set(tracked.stdout.split()) == files_of(default_bake)


def test_quotes_and_apostrophes_bake_a_valid_project(cookies) -> None:
    result = cookies.bake(extra_context={**HOSTILE, "project_slug": "bobs-model"})
    assert result.exit_code == 0, result.exception
    project = Path(result.project_path)
    check_rendered_and_parseable(project)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["description"] == HOSTILE["description"]
    assert pyproject["project"]["authors"] == [{"name": HOSTILE["author"]}]
    tags = yaml.safe_load((project / "conf/tracking/default.yaml").read_text())["tags"]
    assert tags["team"] == HOSTILE["author"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["tracking"]["tags"]["team"] == HOSTILE["author"]
    assert ruff(project, "check").returncode == 0
    assert ruff(project, "format", "--check").returncode == 0


@pytest.mark.parametrize("license_name", ["MIT", "BSD-3-Clause", "Proprietary"])
def test_license_choices(cookies, license_name: str) -> None:
    result = cookies.bake(extra_context={"license": license_name})
    assert result.exit_code == 0, result.exception
    project = Path(result.project_path)
    text = (project / "LICENSE").read_text()
    assert {"MIT": "MIT License", "BSD-3-Clause": "BSD 3-Clause", "Proprietary": "All rights"}[
        license_name
    ] in text
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert pyproject.get("license") == (None if license_name == "Proprietary" else license_name)


def test_python_version_reaches_the_project(cookies) -> None:
    result = cookies.bake(extra_context={"python_version": "3.12"})
    assert result.exit_code == 0, result.exception
    project = Path(result.project_path)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == ">=3.12"
    assert pyproject["tool"]["ruff"]["target-version"] == "py312"
    assert yaml.safe_load((project / "python_env.yaml").read_text())["python"] == "3.12"
