"""The bake matrix: every pair of option values from cookiecutter.json, each bake checked.

Quick tier: exact file set, no leftover Jinja, TOML/YAML/JSON parse, ruff clean, committed.
Slow tier: `make setup` on its Python once for each combination of the options that commands
read (all but the license), then its own lint and quick tests with CI set, as on a runner (the
default bake's full suite runs in test_e2e.py); an s3 bake pushes and pulls through an S3
server (moto). A bake that differs from a set-up one only in its license is that bake to
every command: it is checked to be so, file by file.
"""

from __future__ import annotations

import glob
import json
import os
import re
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
from linters import DEVCONTAINER_SCHEMA, check_schema
from matrix import (
    OPTIONS,
    Choice,
    all_pairs,
    answers,
    bake_matrix,
    check_committed,
    check_rendered_and_parseable,
    check_ruff_clean,
    combinations,
    expected_files,
    files_of,
    label,
    read_options,
    valid,
)

DEFAULTS = {name: values[0] for name, values in OPTIONS.items()}
MATRIX = bake_matrix(OPTIONS, valid)


def twin(choice: Choice) -> Choice | None:
    """The bake set up elsewhere in the suite that this one must equal but for its license: the
    default bake (test_e2e) for the default read options, else the first row with the same
    read options; None for that first row, which is set up here."""
    if read_options(choice) == read_options(DEFAULTS):
        return DEFAULTS
    first = next(row for row in MATRIX if read_options(row) == read_options(choice))
    return None if first is choice else first


def test_matrix_covers_every_pair_of_option_values() -> None:
    assert MATRIX[0] == DEFAULTS
    names = list(OPTIONS)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pairs = {(row[a], row[b]) for row in MATRIX}
            assert pairs == {(x, y) for x in OPTIONS[a] for y in OPTIONS[b]}, (a, b)
    assert len(MATRIX) < len(combinations(OPTIONS, lambda _: True)) / 4
    set_up = [row for row in MATRIX if twin(row) is None]
    plain = all_pairs(combinations(OPTIONS, valid))  # the license taken as a read option
    assert len(set_up) < len({tuple(read_options(row).items()) for row in plain}) - 1
    # the row that re-runs a scikit-learn pipeline (setup_test_and_round_trip)
    assert any(r["model_library"] == "scikit-learn" and r["dvc_remote"] == "local" for r in set_up)


def test_the_validity_filter_is_the_pre_gen_check(tmp_path: Path) -> None:
    """A combination pre_gen refuses is filtered out of the matrix and bakes nothing."""
    wrong = {**DEFAULTS, "dvc_remote": "local", "dvc_remote_url": "s3://team-dvc/storage"}
    assert not valid(wrong)
    assert valid({**DEFAULTS, "dvc_remote": "s3"})  # its default URL is an s3:// one
    assert answers({**DEFAULTS, "dvc_remote": "s3"})["dvc_remote_url"].startswith("s3://")
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=wrong, output_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def bake_of(choice: Choice, out: Path) -> Path:
    return Path(
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=choice, output_dir=str(out))
    )


@pytest.fixture(scope="module", params=MATRIX, ids=label)
def bake(request: pytest.FixtureRequest, tmp_path_factory) -> tuple[Choice, Path]:
    return request.param, bake_of(request.param, tmp_path_factory.mktemp("matrix"))


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


def test_devcontainer_matches_its_schema(bake: tuple[Choice, Path]) -> None:
    choice, project = bake
    path = project / ".devcontainer" / "devcontainer.json"
    checked = check_schema(path, schema=str(DEVCONTAINER_SCHEMA))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = json.loads(path.read_text())
    assert config["image"].endswith(f":{choice['python_version']}")
    assert config["postCreateCommand"] == "python3 tasks.py setup hooks run"


def test_the_devcontainer_schema_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    """The vendored schema is the strict one: a misspelt property fails the check above."""
    path = tmp_path / "devcontainer.json"
    path.write_text(json.dumps({"image": "python:3.11", "postCreateCommnd": "make setup"}))
    refused = check_schema(path, schema=str(DEVCONTAINER_SCHEMA))
    assert refused.returncode != 0 and "postCreateCommnd" in refused.stdout


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
    quick = "ARGS=-m 'not slow' -p no:cacheprovider"  # the README's quick tier, as a runner runs it
    out = run("make", "test", quick, env=env | {"CI": "true"})
    skipped = re.search(r"\d+ skipped", out)  # pytest's count (coverage skips files)
    assert " passed" in out and " failed" not in out and not skipped, out[-3000:]
    check_dvc_round_trip(project, env)  # through the bake's default DVC remote
    # The same inputs give the same model bytes: a forced re-run leaves dvc.lock as it was (one
    # scikit-learn row; the XGBoost bake: test_e2e).
    if choice["model_library"] == "scikit-learn" and choice["dvc_remote"] == "local":
        run("make", "run")
        locked = (project / "dvc.lock").read_text()
        run("dvc", "repro", "-f")  # a new run of the same inputs: the same model bytes
        assert (project / "dvc.lock").read_text() == locked


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


def installs_and_tests_as(project: Path, other: Choice, tmp_path: Path) -> bool:
    """Whether the bake differs from a fresh bake of the other choice only where no command
    reads: LICENSE, the answers recorded in .cruft.json, pyproject's license field. It then
    sets up and tests exactly as that bake does."""
    baked = bake_of(other, tmp_path)
    differ = differences(project, baked)
    if without_license(project / "pyproject.toml") == without_license(baked / "pyproject.toml"):
        differ.discard("pyproject.toml")
    return differ <= {"LICENSE", ".cruft.json"}


def test_only_a_license_apart_is_the_same_bake(tmp_path: Path) -> None:
    other = {**DEFAULTS, "python_version": "3.13", "dvc_remote": "s3"}
    proprietary = bake_of({**other, "license": "Proprietary"}, tmp_path / "p")
    assert installs_and_tests_as(proprietary, other, tmp_path / "a")
    assert installs_and_tests_as(
        bake_of({"license": "BSD-3-Clause"}, tmp_path / "b"), DEFAULTS, tmp_path / "c"
    )
    assert not installs_and_tests_as(proprietary, DEFAULTS, tmp_path / "d")
    assert not installs_and_tests_as(proprietary, {**other, "team_server": "no"}, tmp_path / "e")
    assert not installs_and_tests_as(
        proprietary, {**other, "python_version": "3.12"}, tmp_path / "f"
    )


@pytest.mark.slow
def test_baked_project_sets_up_and_passes_its_tests(
    bake: tuple[Choice, Path], tmp_path: Path
) -> None:
    """The first bake of each combination of read options: `make setup` on its Python, its lint
    and quick tier, a DVC round trip. The rest: that they equal a set-up bake but for the
    license."""
    choice, project = bake
    other = twin(choice)
    if other is not None:
        assert installs_and_tests_as(project, other, tmp_path / "twin"), label(other)
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
