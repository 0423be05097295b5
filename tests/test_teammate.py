"""Onboarding as a team does it: one teammate bakes, points the project at the team topology
(basic-auth server on PostgreSQL, the DVC remote in the object store), trains and pushes to
the git remote; a second one clones it, writes only their own `.env`, and reaches the same
data and the same experiment. And `cookiecutter <git URL>` bakes what a local path bakes."""

from __future__ import annotations

import base64
import filecmp
import json
import shutil
import subprocess
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from conftest import DEFAULT_SLUG, RAW, TEMPLATE, md5, project_env, sh

pytestmark = pytest.mark.slow
PACKAGE = DEFAULT_SLUG.replace("-", "_")


def api(topology: dict, path: str, body: dict | None = None, **query: str) -> dict:
    """The team server's REST API as its administrator (a POST when there is a body)."""
    url = f"{topology['uri']}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    login = f"{topology['username']}:{topology['password']}".encode()
    headers = {"Authorization": f"Basic {base64.b64encode(login).decode()}"}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        return json.load(response)


def dot_env(topology: dict, username: str, password: str) -> str:
    """A teammate's `.env`: the server, their own account, the DVC identity's keys."""
    settings = {
        "MLFLOW_TRACKING_URI": topology["uri"],
        "MLFLOW_TRACKING_USERNAME": username,
        "MLFLOW_TRACKING_PASSWORD": password,
        **topology["dvc"],
    }
    return "".join(f"{name}={value}\n" for name, value in settings.items())


def test_a_second_teammate_reaches_the_same_data_and_experiment(tmp_path: Path) -> None:
    alice = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path / "alice")))
    sh(alice, "make", "setup")
    # DVC's S3 support in the lock, as the README says for a remote in the team's bucket.
    pyproject = alice / "pyproject.toml"
    edited = pyproject.read_text().replace('"dvc>=3.67",', '"dvc>=3.67",\n    "dvc-s3>=3.2",')
    pyproject.write_text(edited)
    sh(alice, "make", "lock", "setup")
    test_groups = "import tasks; tasks.install(*tasks.extras(), *tasks.TESTED, '--inexact')"
    sh(alice, "python3", "-c", test_groups)  # the topology's servers (the `team` group)
    servers = subprocess.Popen(
        [str(alice / ".venv/bin/python"), str(TEMPLATE / "tests/topology.py"), str(tmp_path)],
        cwd=alice,
        env=project_env(alice),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        topology = json.loads(servers.stdout.readline())
        dvc = str(alice / ".venv/bin/dvc")
        # Alice: the team's DVC remote, committed; her keys and account git-ignored.
        sh(alice, dvc, "remote", "add", "-d", "team", "s3://dvc/store")
        sh(alice, dvc, "remote", "modify", "team", "endpointurl", topology["s3_endpoint"])
        (alice / ".env").write_text(dot_env(topology, topology["username"], topology["password"]))
        sh(alice, dvc, "push", env={**project_env(alice), **topology["dvc"]})
        access = (".venv/bin/python", "-m", f"{PACKAGE}.cli", "access", "--user", "bob")
        env = {**project_env(alice), "ACCESS_PASSWORD": "bob-password"}
        sh(alice, *access, "--role", "trainer", env=env)
        assert f"models:/{DEFAULT_SLUG}/1 (alias @challenger)" in sh(alice, "make", "run")
        sh(alice, "git", "add", "-A")
        sh(alice, "git", "commit", "-m", "Team remote, lock, first run")
        origin = tmp_path / "origin.git"
        sh(tmp_path, "git", "clone", "--bare", str(alice), str(origin))

        # Bob: a clone and his own .env, nothing else.
        bob = tmp_path / "bob" / DEFAULT_SLUG
        sh(tmp_path, "git", "clone", str(origin), str(bob))
        assert not (bob / RAW).exists() and not (bob / ".env").exists()
        (bob / ".env").write_text(dot_env(topology, "bob", "bob-password"))
        out = sh(bob, "make", "setup")
        assert "pulled from the DVC remote" in out, out[-3000:]
        assert md5(bob / RAW) == md5(alice / RAW)
        assert f"models:/{DEFAULT_SLUG}/2 (alias @challenger)" in sh(bob, "make", "run")

        experiment = api(topology, "experiments/get-by-name", experiment_name=DEFAULT_SLUG)
        experiment = experiment["experiment"]
        found = api(topology, "runs/search", {"experiment_ids": [experiment["experiment_id"]]})
        runs = {run["info"]["run_id"]: run["info"]["status"] for run in found["runs"]}
        assert sorted(runs.values()) == ["FINISHED", "FINISHED"]
        versions = api(topology, "model-versions/search", filter=f"name='{DEFAULT_SLUG}'")
        assert {v["run_id"] for v in versions["model_versions"]} == set(runs)
    finally:
        servers.stdin.close()
        try:
            servers.wait(timeout=120)
        except subprocess.TimeoutExpired:
            servers.terminate()
            servers.wait(timeout=60)


def test_a_git_url_bakes_what_a_local_path_bakes(tmp_path: Path) -> None:
    """`cookiecutter file://…/ml-template.git` (what `gh:org/ml-template` does, through git)
    and a local checkout render the same files from the same commit."""
    snapshot = tmp_path / "ml-template"
    ignored = shutil.ignore_patterns(".git", ".venv", "build", "node_modules", "__pycache__")
    shutil.copytree(TEMPLATE, snapshot, ignore=ignored)
    sh(snapshot, "git", "init", "--quiet")
    sh(snapshot, "git", "add", "-A")
    sh(snapshot, "git", "commit", "--quiet", "-m", "template")
    remote = tmp_path / "ml-template.git"
    sh(tmp_path, "git", "clone", "--quiet", "--bare", str(snapshot), str(remote))
    config = tmp_path / "cookiecutter.yaml"  # clones go here, not to ~/.cookiecutters
    config.write_text(f"cookiecutters_dir: {tmp_path / 'clones'}\nreplay_dir: {tmp_path}\n")
    bakes = [
        Path(
            cookiecutter(
                source, no_input=True, output_dir=str(tmp_path / out), config_file=str(config)
            )
        )
        for source, out in ((str(snapshot), "by-path"), (remote.as_uri(), "by-url"))
    ]

    def differences(cmp: filecmp.dircmp) -> list[str]:
        found = [*cmp.left_only, *cmp.right_only, *cmp.diff_files, *cmp.funny_files]
        return found + [name for sub in cmp.subdirs.values() for name in differences(sub)]

    assert sorted(differences(filecmp.dircmp(*bakes, ignore=[".git", ".cruft.json"]))) == [
        "pyproject.toml",
        "python_env.yaml",
    ]
    recorded = [json.loads((bake / ".cruft.json").read_text()) for bake in bakes]
    assert [state["template"] for state in recorded] == [str(snapshot), remote.as_uri()]
    commit = recorded[0]["commit"]
    assert commit == recorded[1]["commit"] is not None
    # Only where the library comes from differs: the template's folder, or its repository at
    # the commit the bake recorded.
    by_path, by_url = (tomllib.loads((bake / "pyproject.toml").read_text()) for bake in bakes)
    assert by_path["tool"]["uv"]["sources"]["mlrig"] == {"path": f"{snapshot}/mlrig"}
    assert by_url["tool"]["uv"]["sources"]["mlrig"] == {
        "git": remote.as_uri(), "rev": commit, "subdirectory": "mlrig"
    }  # fmt: skip
    for parsed in (by_path, by_url):
        del parsed["tool"]["uv"]["sources"]
    assert by_path == by_url
