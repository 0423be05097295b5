"""End to end: bake, `make setup`, `dvc repro`, `mlflow run` with an override, the project's own
lint and tests, and the DVC remote round trip -- real tools, the embedded sqlite default."""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import time
import tomllib
from functools import partial
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter

from conftest import (
    ADVISORY,
    DEFAULT_SLUG,
    RAW,
    TEMPLATE,
    check_dvc_round_trip,
    compiled_share,
    free_port,
    loopback_server,
    osv_stand_in,
    project_env,
    sh,
)
from matrix import OPTIONS

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("e2e")]
MODEL = DEFAULT_SLUG  # registered_model_name defaults to the slug
PACKAGE = DEFAULT_SLUG.replace("-", "_")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default bake after `make setup` (venv, data materialised and pushed, experiment),
    its bytecode compiled ahead as on a developer's machine."""
    out = tmp_path_factory.mktemp("e2e")
    path = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out)))
    sh(path, "make", "setup", env=project_env(path) | {"BYTECODE": "1"})
    assert compiled_share(path) > 0.95
    default = OPTIONS["python_version"][0]
    assert sh(path, ".venv/bin/python", "--version").split()[1].startswith(f"{default}.")
    return path


def query(project: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(project / "mlflow.db") as db:
        return db.execute(sql, args).fetchall()


def test_pipeline_and_mlflow_run_register_models(project: Path, tmp_path: Path) -> None:
    out = sh(project, "make", "run")
    assert "data: train 341, valid 114, test 114 rows" in out  # progress ...
    assert re.search(r"round \d+/300: valid logloss=", out)
    assert f"Model:   models:/{MODEL}/1 (alias @challenger)" in out  # ... and the summary
    assert re.search(r"Metrics: test_accuracy=0\.\d+, test_auc=0\.\d+", out)
    ui = r"UI: +http://127\.0\.0\.1:5000/#/experiments/\d+/runs/[0-9a-f]{32} \(after `make ui`\)"
    assert re.search(ui, out), out[-2000:]
    assert "(embedded default; set MLFLOW_TRACKING_URI" in out

    # `mlflow run .` as typed: no --experiment-name; with the venv's Python, then with an
    # environment MLflow builds with uv from uv.lock (in a folder of the test's own).
    out = sh(project, "mlflow", "run", ".", "--env-manager", "local", "-P", "model.max_depth=3")
    assert f"models:/{MODEL}/2 (alias @challenger)" in out
    env = {**project_env(project), "MLFLOW_ENV_ROOT": str(tmp_path / "envs")}
    uv = ("mlflow", "run", ".", "--env-manager", "uv", "-P", "model.max_depth=5")
    out = sh(project, *uv, env=env)
    assert "restoring environment with uv sync" in out
    assert f"models:/{MODEL}/3 (alias @challenger)" in out

    runs = query(
        project,
        "SELECT r.run_uuid, r.name, r.status FROM runs r JOIN experiments e "
        "ON r.experiment_id = e.experiment_id WHERE e.name = ? ORDER BY r.start_time",
        DEFAULT_SLUG,
    )
    assert [(name, status) for _, name, status in runs] == [
        (f"{DEFAULT_SLUG}-xgboost-{n}", "FINISHED") for n in (1, 2, 3)
    ]
    assert query(project, "SELECT COUNT(*) FROM runs") == [(3,)]  # nothing anywhere else
    dvc_run, mlflow_run, uv_run = (run_id for run_id, _, _ in runs)
    depth = "SELECT value FROM params WHERE run_uuid = ? AND key = 'model.max_depth'"
    assert query(project, depth, dvc_run) == [("4",)]
    assert query(project, depth, mlflow_run) == [("3",)]
    assert query(project, depth, uv_run) == [("5",)]
    for run_id in (dvc_run, mlflow_run, uv_run):
        latest = query(project, "SELECT key FROM latest_metrics WHERE run_uuid = ?", run_id)
        keys = {key for (key,) in latest}
        assert {"test_auc", "test_f1", "valid_auc", "iter_valid_logloss"} <= keys
        steps = query(
            project,
            "SELECT COUNT(*) FROM metrics WHERE run_uuid = ? AND key = 'iter_valid_auc'",
            run_id,
        )
        assert steps[0][0] > 10

    versions = query(project, "SELECT version, run_id FROM model_versions WHERE name = ?", MODEL)
    assert sorted(versions) == [(1, dvc_run), (2, mlflow_run), (3, uv_run)]
    aliases = "SELECT alias, version FROM registered_model_aliases WHERE name = ?"
    assert query(project, aliases, MODEL) == [("challenger", 3)]

    predicted = sh(
        project,
        "python", "-c",
        "import mlflow, pandas as pd; "
        f"m = mlflow.pyfunc.load_model('models:/{MODEL}@challenger'); "
        f"x = pd.read_csv('{RAW}').drop(columns=['target']).head(4); "
        "print('PREDICTED', sorted(set(m.predict(x).tolist())) <= [0, 1], len(m.predict(x)))",
    )  # fmt: skip
    assert "PREDICTED True 4" in predicted

    assert (project / "mlartifacts").is_dir()
    assert not list(project.rglob("mlruns")), "stray mlruns/ folder"
    assert "Data and pipelines are up to date" in sh(project, "dvc", "status")
    metrics = yaml.safe_load((project / "reports/metrics.json").read_text())
    assert metrics["test_auc"] > 0.9


def installed(project: Path) -> list[str]:
    """`uv pip freeze` of a project's venv, without the project itself."""
    out = sh(project, ".uv/bin/uv", "pip", "freeze", "--python", ".venv/bin/python")
    return sorted(line for line in out.splitlines() if not line.startswith("-e "))


def test_the_environment_is_the_lock(project: Path, tmp_path: Path) -> None:
    """`make setup` made uv.lock and installed exactly it: a teammate's clone with the same
    lock installs the same versions, and its data round-trips through the default DVC remote;
    a pyproject.toml edit without `make lock` is refused."""
    lock = tomllib.loads((project / "uv.lock").read_text())
    versions = {(p["name"], p["version"]) for p in lock["package"]}
    ours = installed(project)
    pinned = [line for line in ours if "==" in line]
    assert all(tuple(line.split("==")) in versions for line in pinned), ours
    # The library from the template's folder (a path source), as the lock records it.
    assert [line for line in ours if "==" not in line] == [
        f"mlrig @ {(TEMPLATE / 'mlrig').as_uri()}"
    ]
    assert ("mlrig", tomllib.loads((TEMPLATE / "mlrig/pyproject.toml").read_text())["project"][
        "version"]) in versions  # fmt: skip
    assert any(line.startswith("xgboost-cpu==") for line in ours)
    assert not any(line.startswith(("xgboost==", "dask==", "pytest==")) for line in ours)

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(project), str(clone)], check=True)
    shutil.copy(project / "uv.lock", clone / "uv.lock")  # what committing it would do
    sh(clone, "make", "setup")
    assert installed(clone) == ours
    check_dvc_round_trip(clone)  # the default (local) remote: the matrix's default rows rely on it

    pyproject = clone / "pyproject.toml"
    edited = pyproject.read_text().replace('"pandas>=2.2",', '"pandas>=2.2", "tomli-w>=1",')
    assert edited != pyproject.read_text()
    pyproject.write_text(edited)
    refused = subprocess.run(
        ["make", "setup"], cwd=clone, env=project_env(clone), capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "run `make lock` and commit uv.lock" in refused.stderr


def test_dvc_plots_render(project: Path, tmp_path: Path) -> None:
    if not (project / "reports" / "plots").is_dir():
        sh(project, "make", "run")
    sh(project, "dvc", "plots", "show", "--out", str(tmp_path / "plots"))
    page = (tmp_path / "plots" / "index.html").read_text()
    for title in ("ROC (test)", "Precision-recall (test)", "Confusion matrix (test)"):
        assert title in page
    assert "Feature importance" in page
    figures = {p.name for p in (project / "reports" / "figures").iterdir()}
    assert figures == {
        "confusion_matrix.png", "roc_curve.png", "precision_recall_curve.png",
        "feature_importance.png",
    }  # fmt: skip
    assert all(f"reports/figures/{name}" in page for name in figures)


def refused(project: Path, *command: str, env: dict[str, str] | None = None) -> tuple[str, float]:
    """A command that must fail: its one `error:` line and its wall time."""
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=project, env=env or project_env(project), capture_output=True, text=True
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output[-3000:]
    return errors[0], elapsed


def workspace_state(project: Path) -> tuple[str, str]:
    return sh(project, "git", "status", "--porcelain"), sh(project, "dvc", "status", "--json")


def test_refused_input_changes_nothing_and_says_the_fix(project: Path, tmp_path: Path) -> None:
    """Bad overrides, bad raw data, no champion, a bad or dead tracking store: one line naming
    the problem and the fix, and `git status` and `dvc status` exactly as before -- through the
    project's commands (checked before DVC runs) and through DVC typed bare (restored after)."""
    if not (project / "models" / "model").is_dir():
        sh(project, "make", "run")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "--quiet", "-m", "pipeline outputs")
    clean = workspace_state(project)
    typo = "unknown key model.max_dept: did you mean model.max_depth?"
    restored = "[params.yaml restored to the committed one: DVC had written the refused input; "
    restored += "it is kept in .dvc/tmp/refused/params.yaml]"
    cases = [
        (("make", "exp", "ARGS=-S model.max_dept=3"), typo),
        (("dvc", "exp", "run", "-S", "+model.max_dept=3"), f"{typo} {restored}"),
        (("dvc", "exp", "run", "-S", "data.test_size=2"), "data.test_size must be between 0"),
        (("python", "-m", f"{PACKAGE}.cli", "predict", "--input", str(RAW), "--output", "p.csv"),
         f"no version of {MODEL} has the alias @champion yet"),
    ]  # fmt: skip
    for command, message in cases:
        line, _ = refused(project, *command)
        assert message in line, line
        assert workspace_state(project) == clean, command
        assert (project / "models" / "model" / "MLmodel").is_file(), command

    raw = project / RAW
    good = raw.read_bytes()
    header = good.decode().splitlines()[0]
    gaps = [row if i % 100 else re.sub(r"^[^,]*", "", row) for i, row in
            enumerate(good.decode().splitlines()[1:])]  # fmt: skip
    bad_files = [
        (f"{header}\n", "has 0 data rows; data.min_rows is 100"),  # not "non-numeric"
        ("\n".join([header, *gaps]) + "\n", "missing values in features {'mean_radius': 6}"),
    ]
    for content, message in bad_files:
        raw.write_text(content)
        changed = workspace_state(project)
        line, _ = refused(project, "make", "run")  # checked before DVC records it
        assert message in line and workspace_state(project) == changed
        line, _ = refused(project, "dvc", "repro")  # DVC records it, prepare puts it back
        assert message in line and "restored to the committed pointer" in line
        assert workspace_state(project) == changed
    raw.unlink()
    line, _ = refused(project, "make", "run")
    assert "is missing: run `make data`" in line
    raw.write_bytes(good)
    assert workspace_state(project) == clean

    garbage = tmp_path / "garbage.db"
    garbage.write_text("no database\n")
    dead = f"http://127.0.0.1:{free_port()}"
    stores = [
        ("nonsense://x", "has the unknown scheme 'nonsense'"),
        (f"sqlite:///{garbage}", f"sqlite store {garbage} cannot be opened as an MLflow store"),
        (dead, f"MLflow tracking server {dead} is unreachable"),
    ]
    for uri, message in stores:
        env = {**project_env(project), "MLFLOW_TRACKING_URI": uri}
        line, elapsed = refused(project, "make", "mlflow-run", env=env)
        assert message in line and elapsed < 10, (line, elapsed)
    # A bare `mlflow run` against a dead server, with MLflow's retries off (MLproject, README).
    env = {**project_env(project), "MLFLOW_TRACKING_URI": dead,
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(["mlflow", "run", ".", "--env-manager", "local"], cwd=project, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode != 0 and time.monotonic() - started < 10
    assert "Connection refused" in done.stderr.strip().splitlines()[-1]
    assert workspace_state(project) == clean


def test_forced_reruns_leave_dvc_lock_unchanged(project: Path) -> None:
    """The same inputs give the same DVC outputs: `dvc repro -f` twice changes no byte of
    dvc.lock (new MLflow runs, the same model files)."""
    if not (project / "dvc.lock").exists():
        sh(project, "make", "run")
    locked = (project / "dvc.lock").read_text()
    for _ in range(2):
        sh(project, "dvc", "repro", "-f")
        assert (project / "dvc.lock").read_text() == locked
    assert "Data and pipelines are up to date" in sh(project, "dvc", "status")


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=30000",
]  # fmt: skip


def page_text(url: str, profile: Path) -> str:
    """The page's text after its JavaScript ran, from headless Chromium's DOM dump."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "needs Debian's chromium package (.ci/run installs it)"
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", done.stdout, flags=re.DOTALL)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def test_mlflow_ui_shows_the_run_and_the_challenger(project: Path, tmp_path: Path) -> None:
    """`mlflow server` on the project's store after `make run`, looked at in a browser."""
    if not query(project, "SELECT 1 FROM model_versions"):
        sh(project, "make", "run")
    ((experiment_id, run_id, run_name),) = query(
        project,
        "SELECT r.experiment_id, r.run_uuid, r.name FROM runs r JOIN model_versions v "
        "ON v.run_id = r.run_uuid JOIN registered_model_aliases a ON a.name = v.name "
        "AND a.version = v.version WHERE a.alias = 'challenger'",
    )
    server = [str(project / ".venv/bin/mlflow"), "server", "--backend-store-uri",
              "sqlite:///mlflow.db", "--host", "127.0.0.1", "--port", "{port}"]  # fmt: skip
    log, env = tmp_path / "server.log", project_env(project)
    with loopback_server(server, "/health", log, cwd=project, env=env) as base:
        runs = page_text(f"{base}/#/experiments/{experiment_id}/runs", tmp_path / "p1")
        assert run_name in runs and "Training runs" in runs
        run = page_text(f"{base}/#/experiments/{experiment_id}/runs/{run_id}", tmp_path / "p2")
        assert run_name in run and "test_auc" in run
        model = page_text(f"{base}/#/models/{MODEL}", tmp_path / "p3")
        assert f"Registered Models {MODEL}" in model
        assert re.search(r"@\s*challenger", model), model[:3000]


def test_baked_project_lints_and_passes_its_own_tests(project: Path) -> None:
    sh(project, "make", "lint")
    for tier in ("test", "test-slow"):
        out = sh(project, "make", tier)
        assert " passed" in out and " failed" not in out, out[-3000:]
        skipped = re.search(r"\d+ skipped", out)  # pytest's count (coverage skips files)
        assert not skipped, "the team-server topology must run here, not be skipped"
        if tier == "test":  # the quick tier holds the floor of pyproject.toml
            assert re.search(r"Required test coverage of 85(\.0)?% reached", out), out[-2000:]
    # Every dependency group is installed now: the hook knows each name they install.
    tool = TEMPLATE / "tools" / "dependency_modules.py"
    sh(project, ".venv/bin/python", str(tool), "--project", PACKAGE, "--check")


def test_git_hooks_and_the_audit_pass_on_a_fresh_bake_and_catch_what_they_are_for(
    project: Path,
) -> None:
    """Every hook passes on the bake as it is; a staged private key fails them. The audit
    passes against an OSV that knows nothing of the lock, and fails naming a package it
    knows an advisory for."""
    sh(project, "make", "hooks")
    assert (project / ".git" / "hooks" / "pre-commit").is_file()
    out = sh(project, "make", "hooks-run")
    assert "Failed" not in out and "ruff format" in out and "notebooks without outputs" in out
    # A commit (git runs the installed hook, the venv not on PATH) of a private key and of a
    # notebook with its outputs: refused; the notebook is left stripped, ready to add again.
    key = project / "deploy.key"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n")
    notebook = project / "notebooks" / "start.ipynb"
    committed = notebook.read_text()
    executed = json.loads(committed)
    code = next(cell for cell in executed["cells"] if cell["cell_type"] == "code")
    code["execution_count"] = 1
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["569 rows\n"]}]
    notebook.write_text(json.dumps(executed, indent=1))
    try:
        sh(project, "git", "add", key.name, "notebooks")
        refused = subprocess.run(["git", "commit", "-m", "key and outputs"], cwd=project,
                                 env=bare_env(project), capture_output=True, text=True)  # fmt: skip
        said = refused.stdout + refused.stderr  # a git hook's output: on stderr
        assert refused.returncode == 1, said
        assert re.search(r"no private keys\.+Failed", said), said
        assert re.search(r"notebooks without outputs\.+Failed", said), said
        assert json.loads(notebook.read_text())["cells"] == json.loads(committed)["cells"]
    finally:
        sh(project, "git", "reset", "--quiet", "HEAD", key.name, "notebooks")
        key.unlink()
        notebook.write_text(committed)
    with osv_stand_in() as clean:
        out = sh(project, "make", "audit", env={**project_env(project), "OSV_API_URL": clean})
        assert "Found no known vulnerabilities" in out or "No known vulnerabilities" in out, out
    with osv_stand_in("tqdm") as knows_one:
        env = {**project_env(project), "OSV_API_URL": knows_one}
        failed = subprocess.run(["make", "audit"], cwd=project, env=env, capture_output=True,
                                text=True)  # fmt: skip
        assert failed.returncode != 0 and ADVISORY in failed.stdout + failed.stderr


def bare_env(project: Path) -> dict[str, str]:
    """A shell where the project's venv is not activated: nothing of it on PATH."""
    env = project_env(project)
    env["PATH"] = os.pathsep.join(
        part for part in env["PATH"].split(os.pathsep) if Path(part) != project / ".venv" / "bin"
    )
    return env


def readme_commands(project: Path) -> list[str]:
    """The lines of the README's code blocks that run something from the venv."""
    blocks = re.findall(r"^```(?:bash|sh|console)?\n(.*?)^```", (project / "README.md").read_text(),
                        re.MULTILINE | re.DOTALL)  # fmt: skip
    lines = [line.split("  # ")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith(".venv/bin/")]


# The README's venv commands this test runs, as written, with the venv not activated ...
RUN_AS_WRITTEN = (
    ".venv/bin/dvc exp run -S model=logistic_regression",
    f".venv/bin/python -m {PACKAGE}.cli train model.max_depth=6",
    ".venv/bin/dvc plots show",
)
# ... and, for each other one, what it needs or which test runs its kind.
NOT_RUN_HERE = {
    "dvc exp run -S model.max_depth=6": "the same command as the logistic_regression line",
    "dvc plots diff": "a second commit or experiment",
    "n_rows=10000000": "10 million rows (benchmarks/dask_scale.py)",
    "compute=dask": "a Dask cluster (the project's test_dask.py)",
    "dask scheduler": "a Dask cluster on other machines",
    "dask worker": "a Dask cluster on other machines",
    "model.device=cuda": "a GPU",
    "train -m": "a sweep (mlrig's test_sweep.py)",
    "tune --n-trials 50": "50 trainings (mlrig's test_sweep.py runs tune)",
    "optuna-dashboard": "a package the README says to install",
    "dvc remote": "a team's remote (test_teammate.py, test_runner.py)",
    "dvc push": "a team's remote (test_teammate.py, test_runner.py)",
}


def test_dvc_queue_experiments_are_tagged_mlflow_runs(project: Path) -> None:
    """`dvc exp run --queue -S` + `dvc queue start`: each experiment runs in a DVC temporary
    workspace, yet lands in the project's one store as a complete run tagged with its name --
    also one whose model is, byte for byte, the committed one (a tag changed: DVC re-runs the
    train stage, which evaluates and registers what it trained)."""
    if not (project / "dvc.lock").exists():
        sh(project, "make", "run")
    if sh(project, "git", "status", "--porcelain"):  # experiments start from the last commit
        sh(project, "git", "add", "-A")
        sh(project, "git", "commit", "--quiet", "-m", "lock and pipeline outputs")
    # The venv not activated: each experiment's copy of the project (under .dvc/tmp/) runs its
    # stages with the project's .venv Python. (DVC starts its workers as the `dvc` on PATH:
    # `make queue`, as the README says.)
    env = bare_env(project)
    dvc = partial(sh, project, ".venv/bin/dvc", env=env)
    dvc("exp", "run", "--queue", "-S", "model.max_depth=3,5", "-S", "model.n_estimators=20")
    dvc("exp", "run", "--queue", "-S", "tracking.tags.dataset_version=v2")
    sh(project, "make", "queue", "ARGS=-j 1", env=env)
    deadline = time.monotonic() + 900
    while re.search(r"\b(Queued|Running)\b", status := dvc("queue", "status")):
        assert time.monotonic() < deadline, status
        time.sleep(2)
    tasks = re.findall(r"^([0-9a-f]{7})\s+([\w-]+)\s.*\s(\w+)$", status, re.MULTILINE)
    failed = [dvc("queue", "logs", task) for task, _, state in tasks if state != "Success"]
    assert sorted(state for *_, state in tasks) == ["Success"] * 3, status + "".join(failed)[-6000:]

    tagged = query(
        project,
        "SELECT t.value, d.value, v.value, r.status FROM tags t "
        "JOIN params d ON d.run_uuid = t.run_uuid AND d.key = 'model.max_depth' "
        "JOIN params v ON v.run_uuid = t.run_uuid AND v.key = 'tracking.tags.dataset_version' "
        "JOIN runs r ON r.run_uuid = t.run_uuid WHERE t.key = 'dvc.exp_name' "
        "ORDER BY d.value, v.value",
    )
    assert [(depth, version, state) for _, depth, version, state in tagged] == [
        ("3", "v1", "FINISHED"), ("4", "v2", "FINISHED"), ("5", "v1", "FINISHED")
    ]  # fmt: skip
    assert {name for name, *_ in tagged} == {name for _, name, _ in tasks}
    complete = query(
        project,
        "SELECT COUNT(DISTINCT t.run_uuid) FROM tags t JOIN latest_metrics m ON m.run_uuid = "
        "t.run_uuid AND m.key = 'test_auc' JOIN model_versions v ON v.run_id = t.run_uuid "
        "WHERE t.key = 'dvc.exp_name'",
    )
    assert complete == [(3,)], "every experiment's run has its metrics and its model version"
    assert not list((project / ".dvc").rglob("mlflow.db")), "a store inside DVC's workspaces"
    assert not list(project.rglob("mlruns"))


def test_the_readme_commands_work_as_written_without_an_activated_venv(project: Path) -> None:
    """Stages run the project's Python, not the `python` first on PATH: the README's venv
    commands work as written from a shell where the venv is not activated. (Last of the
    module: its experiment stays in the workspace.)"""
    commands = readme_commands(project)
    assert set(RUN_AS_WRITTEN) <= set(commands)
    unsorted = [c for c in commands if c not in RUN_AS_WRITTEN
                and not any(key in c for key in NOT_RUN_HERE)]  # fmt: skip
    assert unsorted == [], "run these here, or say in NOT_RUN_HERE what they need"
    env = bare_env(project)
    found = subprocess.run(["sh", "-c", "command -v python python3"], env=env,
                           capture_output=True, text=True).stdout  # fmt: skip
    assert str(project) not in found  # the `python` on PATH is not the project's
    for command in RUN_AS_WRITTEN:
        sh(project, *shlex.split(command), env=env)
