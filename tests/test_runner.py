"""The generated workflows executed by a runner (`act`, host mode; tests/runner.py): ci.yml on
a push and on a pull request (its metrics/params/plots diff against the base branch),
promote.yml by repository_dispatch and by workflow_dispatch against a real `mlflow server`
(then score.yml, by hand, with the champion it promoted),
and, for an `s3` bake, the data pulled from an S3 remote whose credentials arrive as secrets."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from conftest import (
    DEFAULT_SLUG,
    TEMPLATE,
    loopback_server,
    osv_stand_in,
    project_env,
    s3_server,
    sh,
)
from runner import Runner, outcome

pytestmark = pytest.mark.slow
MODEL = DEFAULT_SLUG
REPOSITORY = f"acme/{DEFAULT_SLUG}"  # what the clones' origin says (act reads it from there)
PACKAGE = DEFAULT_SLUG.replace("-", "_")
# The job's `make test` runs the suite's config and data modules, serially: seconds. The
# whole suite runs in test_e2e.py, and each set-up matrix row runs its quick tier with CI set,
# as a runner sets it.
QUICK = {
    "PYTEST_ADDOPTS": "-m 'not e2e and not slow' -n 0 --cov-fail-under=0 tests/test_config.py "
    "tests/test_data.py"
}  # the floor is the whole quick tier's (test_e2e.py holds a bake's to it)
ORIGIN = pytest.mark.xdist_group("runner-origin")  # the tests that share `origin`, on one worker
CREDENTIALS = {  # what a repository holds as secrets (the server below has no auth)
    "MLFLOW_READER_USERNAME": "reader",
    "MLFLOW_READER_PASSWORD": "reader-password",
    "MLFLOW_PROMOTER_USERNAME": "promoter",
    "MLFLOW_PROMOTER_PASSWORD": "promoter-password",
    "GITHUB_TOKEN": "ghs_runner-test-token",
}


@contextmanager
def ci_env() -> Iterator[dict[str, str]]:
    """What ci.yml's runs get from the runner: QUICK, and the OSV API that `make audit` asks,
    a stand-in on loopback (api.osv.dev is out of reach here)."""
    with osv_stand_in() as osv:
        yield {**QUICK, "OSV_API_URL": osv}


def bake(tmp: Path, answers: dict[str, str] | None = None) -> tuple[Path, str]:
    """A bake, and where its git remote (a bare repository) will be."""
    baked = cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp), extra_context=answers)
    return Path(baked), str(tmp / "origin.git")


def publish(project: Path, remote: str) -> None:
    """Commit what a user commits after `make setup` (uv.lock) and `make run` (dvc.lock, the
    metrics and plots), and push it to the project's git remote."""
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "--quiet", "-m", "Lock, pipeline outputs and metrics")
    sh(project, "git", "clone", "--quiet", "--bare", str(project), remote)


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    project, remote = bake(tmp_path_factory.mktemp("runner"))
    sh(project, "make", "setup")
    sh(project, "make", "run")
    publish(project, remote)
    return project, remote


def summary(output: str) -> str:
    """What the jobs wrote to $GITHUB_STEP_SUMMARY (act prints it as it is written)."""
    return "\n".join(line for line in output.splitlines() if "Summary" in line or "|" in line)


@ORIGIN
def test_ci_on_a_push_and_on_a_pull_request(origin: tuple[Path, str], tmp_path: Path) -> None:
    _, remote = origin
    with ci_env() as env:
        pushed = Runner.clone(remote, tmp_path / "push").run("push", "ci.yml", env=env)
    assert pushed.returncode == 0, pushed.stdout[-6000:] + pushed.stderr[-2000:]
    assert outcome(pushed.stdout, "ci/test") == "succeeded"
    plain = re.sub(r"\x1b\[[0-9;]*m", "", pushed.stdout)  # pytest colours its summary
    assert re.search(r"tests/test_config\.py \.+", plain)  # the runner's PYTEST_ADDOPTS
    assert re.search(r"tests/test_data\.py \.+", plain)
    assert re.search(r"=+ \d+ passed(, \d+ deselected)? in [\d.]+s =+", plain)
    assert "Metrics: this pull request" not in pushed.stdout  # a pull request's step only

    # A pull request that changes a parameter: its summary compares the run with main's.
    branch = tmp_path / "branch"
    sh(tmp_path, "git", "clone", "--quiet", remote, str(branch))
    sh(branch, "git", "switch", "--quiet", "-c", "deeper-trees")
    for name in ("params.yaml", "conf/model/xgboost.yaml"):
        text = (branch / name).read_text()
        assert text.count("max_depth: 4") == 1, name
        (branch / name).write_text(text.replace("max_depth: 4", "max_depth: 6"))
    sh(branch, "git", "commit", "--quiet", "-am", "Deeper trees")
    sh(branch, "git", "push", "--quiet", "origin", "deeper-trees")
    runner = Runner.clone(remote, tmp_path / "pr", branch="deeper-trees")
    event = {
        "number": 1,
        "pull_request": {"base": {"ref": "main"}, "head": {"ref": "deeper-trees"}},
    }
    with ci_env() as env:
        done = runner.run("pull_request", "ci.yml", event, env=env)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    written = summary(done.stdout)
    assert "Metrics: this pull request against origin/main" in written, written
    assert "reports/metrics.json | test_auc" in written
    assert re.search(r"model\.max_depth +\| 4 +\| 6 ", written), written
    plots = runner.out / "artifacts" / "dvc-plots"
    assert "upload-artifact dvc-plots: dvc_plots" in runner.actions_log()
    assert (plots / "index.html").is_file()


def alias(server: str, name: str) -> str | None:
    query = urllib.parse.urlencode({"name": MODEL, "alias": name})
    url = f"{server}/api/2.0/mlflow/registered-models/alias?{query}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
            return json.load(response)["model_version"]["version"]
    except urllib.error.HTTPError as err:
        assert err.code == 404, err
        return None


@ORIGIN
def test_promote_by_dispatch_and_a_failing_version_stops_before_promote(
    origin: tuple[Path, str], tmp_path: Path
) -> None:
    project, remote = origin
    server_command = [
        "env", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
        str(project / ".venv/bin/mlflow"), "server", "--host", "127.0.0.1", "--port", "{port}",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1",
    ]  # fmt: skip
    with loopback_server(server_command, "/health", tmp_path / "server.log") as server:
        env = {**project_env(project), "MLFLOW_TRACKING_URI": server}
        train = (".venv/bin/python", "-m", f"{PACKAGE}.cli", "train")
        sh(project, *train, env=env)  # version 1
        weak = ("model.n_estimators=1", "model.max_depth=1", "model.early_stopping_rounds=0")
        sh(project, *train, *weak, env=env)  # version 2: fails the gate's thresholds
        secrets = {**CREDENTIALS, "MLFLOW_TRACKING_URI": server}

        # The webhook bridge's dispatch: validate -> promote -> serving-image context.
        runner = Runner.clone(remote, tmp_path / "dispatch", repository=REPOSITORY)
        payload = {"model_name": MODEL, "model_version": "1"}
        event = {"action": "mlflow-model-version", "client_payload": payload}
        done = runner.run("repository_dispatch", "promote.yml", event, secrets=secrets)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        for job in ("validate", "promote", "serving-image"):
            assert outcome(done.stdout, f"promote/{job}") == "succeeded", job
        assert alias(server, "champion") == "1"
        log = runner.actions_log()
        assert "docker login ghcr.io as" in log
        assert f"Validation of {MODEL} v1: PASSED (enforce)" in done.stdout
        assert "The served model answers probabilities: 0." in done.stdout  # before the push
        assert "docker build build/serving: " in log
        assert f"tag ghcr.io/{REPOSITORY}/{MODEL}:v1" in log

        # By hand, a version that fails validation: promote never runs, @champion stays.
        runner = Runner.clone(remote, tmp_path / "by-hand")
        inputs = {"inputs": {"model_name": MODEL, "model_version": "2"}}
        done = runner.run("workflow_dispatch", "promote.yml", inputs, secrets=secrets)
        assert done.returncode != 0
        assert outcome(done.stdout, "promote/validate") == "failed"
        assert outcome(done.stdout, "promote/promote") is None
        assert f"Validation of {MODEL} v2: FAILED (enforce)" in done.stdout
        assert alias(server, "champion") == "1"

        # The scheduled scoring, started by hand: the champion scores the raw data.
        runner = Runner.clone(remote, tmp_path / "score")
        batch = {"inputs": {"batch": "data/raw/breast_cancer.csv"}}
        scorer = {"MLFLOW_SCORER_USERNAME": "scorer", "MLFLOW_SCORER_PASSWORD": "scorer-pw"}
        scoring = {**secrets, **scorer}
        done = runner.run("workflow_dispatch", "score.yml", batch, secrets=scoring)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        assert outcome(done.stdout, "score/score") == "succeeded"
        assert f"Scored 569 rows with models:/{MODEL}/1" in done.stdout
        assert "upload-artifact predictions: predictions" in runner.actions_log()
        scored = runner.out / "artifacts" / "predictions" / "predictions.parquet"
        assert scored.is_file()


def test_ci_pulls_the_data_from_an_s3_remote_with_secrets(tmp_path: Path) -> None:
    """An s3 bake's CI gets the data from the team's bucket with the repository's secrets
    (the S3 endpoint one of them), not by re-materialising it."""
    import boto3

    project, remote = bake(tmp_path, {"dvc_remote": "s3"})
    keys = {"AWS_ACCESS_KEY_ID": "runner-key", "AWS_SECRET_ACCESS_KEY": "runner-secret"}
    with s3_server(tmp_path / "moto.log") as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket=f"{DEFAULT_SLUG}-dvc")
        env = {**project_env(project), **keys, "DVC_S3_ENDPOINT_URL": endpoint}
        out = sh(project, "make", "setup", env=env)
        assert "and pushed to the DVC remote" in out
        publish(project, remote)

        runner = Runner.clone(remote, tmp_path / "ci")
        secrets = {f"DVC_{name}": value for name, value in keys.items()}
        secrets["DVC_S3_ENDPOINT_URL"] = endpoint
        with ci_env() as env:
            done = runner.run("push", "ci.yml", secrets=secrets, env=env)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        assert "pulled from the DVC remote" in done.stdout
