"""Bakes with particular answers: hostile text, each license, a Python version, the recorded
answers. (Every option combination's file set, rendering and lint: test_matrix.py.)"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import TEMPLATE
from matrix import OPTIONS, answers, check_rendered_and_parseable, check_ruff_clean

HOSTILE = {
    "project_name": 'Bob\'s "Quoted" Model: v2 # not a comment',
    "description": "It's a \"test\" \\ with: colons, #hashes and 'quotes'",
    "author": 'O\'Brien & "Sons"',
}


@pytest.fixture(scope="module")
def default_bake(cookies_session):
    result = cookies_session.bake()
    assert result.exit_code == 0, result.exception
    return Path(result.project_path)


def test_answers_are_recorded_for_template_updates(default_bake: Path) -> None:
    """`.cruft.json` (cruft's format) holds the template, its commit and every answer."""
    state = json.loads((default_bake / ".cruft.json").read_text())
    defaults = answers({name: values[0] for name, values in OPTIONS.items()})
    public = {key: value for key, value in defaults.items() if not key.startswith("_")}
    assert state["context"]["cookiecutter"] == public
    assert Path(state["template"]) == TEMPLATE
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=TEMPLATE, capture_output=True, text=True, check=True
    )
    assert state["commit"] == head.stdout.strip()


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
    check_ruff_clean(project)


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
