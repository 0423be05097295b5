"""The bake matrix: every pair of option values from cookiecutter.json, each bake checked.

Quick tier: exact file set, no leftover Jinja, TOML/YAML/JSON parse, ruff clean, committed.
Slow tier: each bake's `make setup` on its Python, then its own lint and quick tests (its full
suite runs on the default bake in test_e2e.py); an s3 bake pushes and pulls through an S3
server (moto). A bake that differs from the default bake only in its license is the default
bake to every command: it is checked to be so, and test_e2e sets up and tests that one.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tomllib
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from conftest import TEMPLATE, check_dvc_round_trip, compiled_share, project_env, s3_server, sh
from matrix import (
    OPTIONS,
    Choice,
    all_pairs,
    answers,
    check_committed,
    check_rendered_and_parseable,
    check_ruff_clean,
    expected_files,
    files_of,
    label,
    valid,
)

DEFAULTS = {name: values[0] for name, values in OPTIONS.items()}
MATRIX = all_pairs(OPTIONS, valid)


def test_matrix_covers_every_pair_of_option_values() -> None:
    assert MATRIX[0] == DEFAULTS
    names = list(OPTIONS)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pairs = {(row[a], row[b]) for row in MATRIX}
            assert pairs == {(x, y) for x in OPTIONS[a] for y in OPTIONS[b]}, (a, b)
    combinations = 1
    for values in OPTIONS.values():
        combinations *= len(values)
    assert len(MATRIX) < combinations / 4


def test_the_validity_filter_is_the_pre_gen_check(tmp_path: Path) -> None:
    """A combination pre_gen refuses is filtered out of the matrix and bakes nothing."""
    wrong = {**DEFAULTS, "dvc_remote": "local", "dvc_remote_url": "s3://team-dvc/storage"}
    assert not valid(wrong)
    assert valid({**DEFAULTS, "dvc_remote": "s3"})  # its default URL is an s3:// one
    assert answers({**DEFAULTS, "dvc_remote": "s3"})["dvc_remote_url"].startswith("s3://")
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=wrong, output_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module", params=MATRIX, ids=label)
def bake(request: pytest.FixtureRequest, tmp_path_factory) -> tuple[Choice, Path]:
    out = tmp_path_factory.mktemp("matrix")
    choice = request.param
    path = cookiecutter(str(TEMPLATE), no_input=True, extra_context=choice, output_dir=str(out))
    return choice, Path(path)


def test_exact_file_set(bake: tuple[Choice, Path]) -> None:
    choice, project = bake
    assert files_of(project) == expected_files(choice)
    folders = [p for p in project.rglob("*") if ".git" not in p.relative_to(project).parts]
    empty = [p for p in folders if p.is_dir() and not any(p.iterdir())]
    assert empty == [], "folders left empty"


def test_rendered_and_parseable(bake: tuple[Choice, Path]) -> None:
    check_rendered_and_parseable(bake[1])


def test_ruff_clean(bake: tuple[Choice, Path]) -> None:
    check_ruff_clean(bake[1])


def test_committed(bake: tuple[Choice, Path]) -> None:
    check_committed(bake[1])


def interpreter(version: str) -> str:
    """A Python of this version: on PATH, or installed by pyenv."""
    candidates = [shutil.which(f"python{version}")]
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "--version"], capture_output=True).returncode == 0:
            return candidate
    pytest.skip(f"no python{version} on this machine")


def setup_test_and_round_trip(choice: Choice, project: Path, env: dict[str, str]) -> None:
    run = partial(sh, project, env=env, timeout=1800)
    run("make", "setup", f"PYTHON={interpreter(choice['python_version'])}")
    assert compiled_share(project) < 0.5  # BYTECODE=0: only what `setup` imported (~20%)
    version = run(".venv/bin/python", "--version")
    assert version.split()[1].startswith(choice["python_version"] + ".")
    run("make", "lint")
    out = run(".venv/bin/pytest", "-m", "not slow", "-p", "no:cacheprovider")
    assert " passed" in out and " failed" not in out
    check_dvc_round_trip(project, env)  # through the bake's default DVC remote


def differences(project: Path, other: Path) -> set[str]:
    """The files whose content differs between two bakes (either side's files; not .git)."""
    files = files_of(project) | files_of(other)
    return {
        name
        for name in files
        if not ((project / name).is_file() and (other / name).is_file())
        or (project / name).read_bytes() != (other / name).read_bytes()
    }


def without_license(pyproject: Path) -> dict[str, object]:
    parsed = tomllib.loads(pyproject.read_text())
    parsed["project"].pop("license", None)
    return parsed


def installs_and_tests_as_the_default_bake(project: Path, tmp_path: Path) -> bool:
    """Whether the bake differs from the default bake only where no command reads: LICENSE,
    the answers recorded in .cruft.json, pyproject's license field. It then sets up and tests
    exactly as the default bake does, whose `make setup`, full suite and DVC round trip
    through the default remote test_e2e runs."""
    default = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path)))
    differ = differences(project, default)
    if without_license(project / "pyproject.toml") == without_license(default / "pyproject.toml"):
        differ.discard("pyproject.toml")
    return differ <= {"LICENSE", ".cruft.json"}


def test_only_a_license_apart_from_the_default_bake_is_the_default_bake(tmp_path: Path) -> None:
    def bake(**choice: str) -> Path:
        out = tmp_path / "-".join(choice.values())
        return Path(
            cookiecutter(str(TEMPLATE), no_input=True, extra_context=choice, output_dir=str(out))
        )

    assert installs_and_tests_as_the_default_bake(bake(license="Proprietary"), tmp_path / "a")
    assert not installs_and_tests_as_the_default_bake(bake(team_server="no"), tmp_path / "b")
    assert not installs_and_tests_as_the_default_bake(bake(python_version="3.12"), tmp_path / "c")


@pytest.mark.slow
def test_baked_project_sets_up_and_passes_its_tests(
    bake: tuple[Choice, Path], tmp_path: Path
) -> None:
    """Each bake whose dependencies or code differ from the default bake's: `make setup` on its
    Python, its lint and quick tier, a DVC round trip. The rest: that they do not differ."""
    choice, project = bake
    if installs_and_tests_as_the_default_bake(project, tmp_path / "default"):
        return
    env = project_env(project)
    if choice["dvc_remote"] == "local":
        setup_test_and_round_trip(choice, project, env)
        return
    import boto3

    url = urlparse(answers(choice)["dvc_remote_url"])
    with s3_server(tmp_path / "moto.log") as endpoint:
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        env |= {key.upper(): value for key, value in credentials.items()}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials)
        s3.create_bucket(Bucket=url.netloc)
        # What the README tells a team to do: the endpoint in git-ignored .dvc/config.local.
        (project / ".dvc" / "config.local").write_text(
            f"['remote \"s3\"']\n    endpointurl = {endpoint}\n"
        )
        setup_test_and_round_trip(choice, project, env)
        keys = s3.list_objects_v2(Bucket=url.netloc).get("Contents", [])
        assert any(k["Key"].startswith(url.path.strip("/")) for k in keys), keys
