"""The mlrig library as a release would publish it: the wheel and the sdist build from mlrig/
with the version its pyproject.toml names, typed, with its entry point; the release workflow
publishes them with trusted publishing, least privilege and pinned actions."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import yaml

from conftest import TEMPLATE
from linters import actionlint, check_schema, zizmor

LIBRARY = TEMPLATE / "mlrig"
WORKFLOWS = TEMPLATE / ".github" / "workflows"
VERSION = tomllib.loads((LIBRARY / "pyproject.toml").read_text())["project"]["version"]


def test_the_wheel_and_the_sdist_build(tmp_path: Path) -> None:
    uv = Path(sys.executable).with_name("uv")
    done = subprocess.run(
        [str(uv), "build", str(LIBRARY), "--out-dir", str(tmp_path), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob(f"mlrig-{VERSION}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as built:
        names = set(built.namelist())
        metadata = built.read(f"mlrig-{VERSION}.dist-info/METADATA").decode()
        entry_points = built.read(f"mlrig-{VERSION}.dist-info/entry_points.txt").decode()
    sources = {p.relative_to(LIBRARY / "src").as_posix() for p in (LIBRARY / "src").rglob("*.py")}
    assert sources <= names and "mlrig/py.typed" in names
    assert not any(name.startswith(("tests/", "mlrig/tests")) for name in names)
    assert f"Version: {VERSION}" in metadata and "Requires-Dist: mlflow>=" in metadata
    assert "mlrig-webhooks = mlrig.webhooks:main" in entry_points
    (sdist,) = tmp_path.glob(f"mlrig-{VERSION}.tar.gz")
    with tarfile.open(sdist) as packed:
        members = {
            member.name.split("/", 1)[1] for member in packed.getmembers() if "/" in member.name
        }
    assert {"pyproject.toml", "README.md", "src/mlrig/__init__.py", "tests/conftest.py"} <= members


def test_the_release_workflow_is_lint_clean() -> None:
    release = WORKFLOWS / "release.yml"
    for result in (actionlint(release), check_schema(release), zizmor(WORKFLOWS)):
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_release_publishes_with_trusted_publishing_only() -> None:
    """No token anywhere: the publish job alone may mint an OIDC token, in the protected
    `pypi` environment; the build job only reads; every action is pinned to a full SHA."""
    spec = yaml.safe_load((WORKFLOWS / "release.yml").read_text())
    assert spec[True] == {"push": {"tags": ["mlrig-v*"]}}  # YAML 1.1 reads `on` as True
    assert spec["permissions"] == {}
    jobs = spec["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["publish"]["permissions"] == {"id-token": "write"}
    assert jobs["publish"]["environment"] == "pypi" and jobs["publish"]["needs"] == "build"
    for job in jobs.values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", "")
            if "uses" in step:
                assert len(step["uses"].split("@")[1]) == 40, step["uses"]
            assert "password" not in step.get("with", {})
