"""Sweeps: Hydra multirun and `tune` (Optuna) make one parent run with a child per job; a study
is seeded, resumes where it was interrupted, and can be shared by two processes."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from conftest import BOOSTED
from mlflow import MlflowClient
from mlflow.entities import Run

pytestmark = pytest.mark.slow
# -1: XGBoost refuses it once training starts, so that job's run fails; abc: refused by the
# configuration's types before the job's run exists
SWEPT = "model.min_child_weight=1,-1,2,abc"
STATUSES = ["FAILED", "FINISHED", "FINISHED"]


def sweep(*overrides: str, returncode: int = 0) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "demo.cli", "train", "-m"]
    done = subprocess.run(
        [*command, *overrides, *BOOSTED], capture_output=True, text=True, env=os.environ.copy()
    )
    assert done.returncode == returncode, done.stderr[-3000:]
    return done


def parent_and_children(study: str | None = None) -> tuple[Run, list[Run]]:
    """The newest sweep's parent run (or a study's) and its children."""
    client = MlflowClient()
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], order_by=["start_time DESC"]
    )
    parent = next(
        run
        for run in runs
        if "sweep.children" in run.data.tags
        and (study is None or run.data.tags.get("optuna.study") == study)
    )
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def test_multirun_nests_jobs_and_a_failed_job_would_not_stop_it(workspace: Path) -> None:
    """The sweep goes on past failed jobs, and then says which failed and exits 1."""
    done = sweep(SWEPT, returncode=1)
    parent, children = parent_and_children()

    assert len(children) == 3
    assert sorted(c.info.status for c in children) == STATUSES
    finished = [c for c in children if c.info.status == "FINISHED"]
    best = max(finished, key=lambda run: run.data.metrics["test_auc"])
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name.endswith("-sweep-1")
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.tags["sweep.failed"] == "2"  # -1's run, and abc's job (no run)
    assert parent.data.metrics["best_test_auc"] == best.data.metrics["test_auc"]
    assert SWEPT in parent.data.tags["sweep.overrides"]
    assert f"best test_auc={best.data.metrics['test_auc']:.4f}" in done.stdout
    assert "2 finished, 2 failed" in done.stdout
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert line.startswith("error: 2 job(s) of the sweep failed: job 1 (")
    assert "model.min_child_weight=-1" in line and "model.min_child_weight=abc" in line


def tune(workspace: Path, *args: str) -> subprocess.Popen[str]:
    """`tune` in a process of its own (as a second shell or machine would run it), with
    Ctrl-C's default handling even where this suite started with SIGINT ignored (a background
    job of a non-interactive shell passes SIG_IGN on)."""
    command = [sys.executable, "-m", "demo.cli", "tune", *args]
    staging = workspace / "tmp"  # its runs' staging folders (mlflow-run-*): a run is active
    staging.mkdir(exist_ok=True)
    with (workspace / f"tune-{time.monotonic_ns()}.log").open("w") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "TMPDIR": str(staging)},
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip


def newest_log(workspace: Path) -> Path:
    """The log of the `tune` process started last."""
    return max(workspace.glob("tune-*.log"), key=lambda log: log.stat().st_mtime)


def finished(workspace: Path, study: str, state: str = "COMPLETE") -> list[dict[str, object]]:
    """The parameters of the study's trials in `state` (finished ones by default), read from
    its storage."""
    import optuna

    storage = f"sqlite:///{workspace / 'studies.db'}"
    try:
        loaded = optuna.load_study(study_name=study, storage=storage)
    except KeyError:  # not created yet
        return []
    return [t.params for t in loaded.get_trials(states=(optuna.trial.TrialState[state],))]


def states(workspace: Path, study: str) -> list[str]:
    """The states of the study's trials, read from its sqlite file in a few milliseconds."""
    query = "SELECT t.state FROM trials t JOIN studies s USING (study_id) WHERE s.study_name = ?"
    with closing(sqlite3.connect(workspace / "studies.db", timeout=30)) as db:
        try:
            return [state for (state,) in db.execute(query, (study,))]
        except sqlite3.OperationalError:  # no tables yet
            return []


def test_tune_is_seeded_resumable_and_records_the_best(workspace: Path) -> None:
    import optuna

    assert int(optuna.__version__.split(".")[0]) >= 4
    storage = f"sqlite:///{workspace / 'studies.db'}"
    refused = tune(workspace, "--storage", storage, "--n-trials", "0")
    assert refused.wait() == 2  # not the configured count
    log = newest_log(workspace)
    assert log.read_text().strip().endswith("error: tune: n_trials must be >= 1")
    for study in ("first", "second"):
        started = tune(workspace, "--study", study, "--storage", storage, "--n-trials", "2")
        assert started.wait() == 0
    assert finished(workspace, "first") == finished(workspace, "second")  # seeded with `seed`

    interrupted = tune(workspace, "--study", "first", "--storage", storage, "--n-trials", "4")
    # Ctrl-C in the middle of the fourth trial: sent once it runs (it takes a second or more; a
    # signal sent a poll after the third finished could arrive when the fourth had finished
    # too), seen by a poll of milliseconds.
    # (Not by polling the MLflow store: a reader every few milliseconds would lock its writer.)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (
        (now := states(workspace, "first")).count("COMPLETE") == 3
        and "RUNNING" in now
        and any((workspace / "tmp").glob("mlflow-run-*"))  # its MLflow run is active
    ):
        time.sleep(0.01)
    interrupted.send_signal(signal.SIGINT)
    code = interrupted.wait(timeout=120)
    said = newest_log(workspace).read_text()
    assert code == 128 + signal.SIGINT, said
    assert "Traceback" not in said and said.rstrip().endswith("error: interrupted (Ctrl-C)")
    assert len(finished(workspace, "first")) == 3
    _, children = parent_and_children("first")
    # The fourth trial's run ended KILLED (or FINISHED, where Ctrl-C came between the run's
    # end and Optuna's record of the trial): none is left RUNNING.
    statuses = sorted(c.info.status for c in children)
    assert statuses in (["FINISHED"] * 3 + ["KILLED"], ["FINISHED"] * 4), statuses
    assert tune(workspace, "--study", "first", "--storage", storage, "--n-trials", "4").wait() == 0
    assert len(finished(workspace, "first")) == 4  # it went on where it stopped

    parent, children = parent_and_children("first")
    assert parent.data.tags["optuna.study"] == "first"
    # four, and the interrupted trial's run where it had finished (its trial ran again)
    ran_again = statuses.count("FINISHED") - 3
    assert len([c for c in children if c.info.status == "FINISHED"]) == 4 + ran_again
    best = max((c for c in children if c.info.status == "FINISHED"),
               key=lambda run: run.data.metrics["test_auc"])  # fmt: skip
    assert parent.data.tags["best_run_id"] == best.info.run_id
    # Trials register nothing; each `tune` that finished registered its study's best, once.
    client = MlflowClient()
    versions = client.search_model_versions("name = 'demo-model'")
    assert 2 <= len(versions) <= 3 < len(children)  # "second"'s best, "first"'s one or two
    second, trials = parent_and_children("second")
    registered = {v.run_id for v in versions}
    assert registered <= {r.info.run_id for r in [*children, *trials]}  # trials' models only
    assert {parent.data.tags["best_run_id"], second.data.tags["best_run_id"]} <= registered
    challenger = client.get_model_version_by_alias("demo-model", "challenger")
    assert challenger.run_id == best.info.run_id  # the last `tune`: first's best


def test_tune_prunes_trials_by_the_validation_metric_and_registers_once(workspace: Path) -> None:
    """XGBoost reports each round's validation AUC to the trial; the median pruner stops the
    trials behind the earlier ones (PRUNED in Optuna, tagged so on their FAILED runs); the
    study registers one version, its best completed trial's."""
    storage = f"sqlite:///{workspace / 'studies.db'}"
    args = ("--study", "pruned", "--storage", storage, "--n-trials", "8", *BOOSTED)
    assert tune(workspace, *args).wait() == 0, newest_log(workspace).read_text()[-3000:]
    said = newest_log(workspace).read_text()
    assert re.search(r"trial \d+ pruned at round \d+: auc=0\.\d+", said), said[-3000:]
    pruned = finished(workspace, "pruned", "PRUNED")
    assert len(pruned) >= 1 and len(finished(workspace, "pruned")) + len(pruned) == 8
    parent, children = parent_and_children("pruned")
    marked = [c for c in children if c.data.tags.get("optuna.trial_state") == "PRUNED"]
    assert len(marked) == len(pruned) and {c.info.status for c in marked} == {"FAILED"}
    assert parent.data.tags["sweep.pruned"] == str(len(pruned))
    assert parent.data.tags["sweep.failed"] == "0"
    (version,) = MlflowClient().search_model_versions("name = 'demo-model'")
    assert version.run_id == parent.data.tags["best_run_id"]


def test_tune_with_a_second_objective_records_its_pareto_front(workspace: Path) -> None:
    """test_auc up and test_logloss down: every trial gives both values (no pruning, which
    Optuna has for one objective only); the front's runs are tagged, and the study registers
    one version, the front's best by test_auc. A metric the job does not log stops the study
    after its first trial, in one line; a study reopened with other objectives is refused."""
    import optuna

    storage = f"sqlite:///{workspace / 'studies.db'}"
    args = ("--study", "pareto", "--storage", storage, "--n-trials", "4", *BOOSTED)
    code = tune(workspace, *args, "--second-objective", "test_logloss:minimize").wait(600)
    said = newest_log(workspace).read_text()
    assert code == 0, said[-3000:]
    assert "no pruning: a study of two objectives is not pruned" in said
    study = optuna.load_study(study_name="pareto", storage=storage)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                optuna.study.StudyDirection.MINIMIZE]  # fmt: skip
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert all(len(t.values) == 2 for t in trials)
    parent, children = parent_and_children("pareto")
    front = {t.user_attrs["mlflow_run_id"] for t in study.best_trials}
    assert set(parent.data.tags["pareto_run_ids"].split(",")) == front
    tagged = {c.info.run_id for c in children if c.data.tags["optuna.pareto_front"] == "true"}
    assert tagged == front
    for run in children:  # each run's metrics are its trial's values
        trial = next(t for t in trials if t.user_attrs["mlflow_run_id"] == run.info.run_id)
        assert trial.values == [run.data.metrics["test_auc"], run.data.metrics["test_logloss"]]
    (version,) = MlflowClient().search_model_versions("name = 'demo-model'")
    best = max(children, key=lambda run: run.data.metrics["test_auc"])
    assert version.run_id == parent.data.tags["best_run_id"] == best.info.run_id in front
    assert f"Pareto front: {len(front)} trial(s)" in said

    again = tune(workspace, "--study", "pareto", "--storage", storage, "--n-trials", "5")
    assert again.wait(timeout=600) == 2
    said = newest_log(workspace).read_text()
    assert "optimises test_auc (maximize), test_logloss (minimize), not test_auc (maximize)" in said
    other = tune(workspace, "--study", "pareto", "--storage", storage, "--n-trials", "5",
                 "--second-objective", "test_recall:minimize")  # fmt: skip
    assert other.wait(timeout=600) == 2  # the same directions, another metric
    said = newest_log(workspace).read_text()
    assert "not test_auc (maximize), test_recall (minimize)" in said
    unknown = tune(workspace, "--storage", storage, "--n-trials", "3",
                   "--second-objective", "test_speed:maximize")  # fmt: skip
    assert unknown.wait(timeout=600) == 2
    last = newest_log(workspace).read_text().strip().splitlines()[-1]
    assert last.startswith("error: tune: second objective test_speed is not a metric the job")
    assert "test_auc" in last
    assert len(study_trials(storage, "demo-linear-test_speed")) == 1
    for bad in ("test_logloss", "test_logloss:down", "test_auc:minimize"):
        refused = tune(workspace, "--storage", storage, "--second-objective", bad)
        assert refused.wait() == 2, bad
        assert newest_log(workspace).read_text().strip().splitlines()[-1].startswith("error: tune:")


def test_a_study_whose_trials_all_fail_stops(workspace: Path) -> None:
    """Only finished trials count towards n_trials: trials that always fail (XGBoost refuses
    min_child_weight=-1 in every one) stop the study once as many failed, in one line."""
    storage = f"sqlite:///{workspace / 'studies.db'}"
    args = ("--study", "failing", "--storage", storage, "--n-trials", "2")
    failing = tune(workspace, *args, *BOOSTED, "model.min_child_weight=-1")
    assert failing.wait(timeout=600) == 2
    last = newest_log(workspace).read_text().strip().splitlines()[-1]
    assert last == (
        "error: tune: 2 trials of this process failed, as many as n_trials (2): the study "
        "stopped; the log above says why"
    )
    assert [t.state.name for t in study_trials(storage, "failing")] == ["FAIL", "FAIL"]
    (parent,) = MlflowClient().search_runs(["0"], "tags.`optuna.study` = 'failing'")
    assert parent.info.status == "FAILED"  # ended: no trial to record


def study_trials(storage: str, name: str) -> list[object]:
    import optuna

    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


# A `tune` process up to opening its study, at one instant with the others: once all have
# written their ready file, each waits (busily, to the microsecond) until just after the last.
OPEN_STUDY = """
import sys, time
from pathlib import Path
import optuna, sqlalchemy  # imported before the start: only the opening races
from demo.project import PROJECT
from mlrig.tune import Study, open_study

cfg = PROJECT.composed([])
ready, storage, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ready.write_text("")
while len(files := list(ready.parent.glob("ready-*"))) < count:
    time.sleep(0.001)
start = max(file.stat().st_mtime for file in files) + 0.5
while time.time() < start:
    pass
open_study(cfg, Study("shared", storage, 1))
"""


def test_processes_opening_one_new_study_storage_at_once_take_turns(workspace: Path) -> None:
    # Each would create the new storage's tables ("table studies already exists" for the rest).
    storage, count = f"sqlite:///{workspace / 'studies.db'}", 4
    command = [sys.executable, "-c", OPEN_STUDY]
    opening = [
        subprocess.Popen(
            [*command, str(workspace / f"ready-{i}"), storage, str(count)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    errors = [process.communicate(timeout=300)[1] for process in opening]
    assert [p.returncode for p in opening] == [0] * count, "".join(e[-2000:] for e in errors)


def test_two_workers_share_one_study(workspace: Path) -> None:
    # Both open a tracking store that does not exist yet: one creates it, under the lock file.
    (workspace / "mlflow.db").unlink()
    storage = f"sqlite:///{workspace / 'studies.db'}"
    workers = [
        tune(workspace, "--study", "shared", "--storage", storage, "--n-trials", "4")
        for _ in range(2)
    ]
    codes = [worker.wait(timeout=600) for worker in workers]
    logs = "".join(log.read_text()[-3000:] for log in sorted(workspace.glob("tune-*.log")))
    assert codes == [0, 0], logs
    assert 4 <= len(finished(workspace, "shared")) <= 5  # each stops once the study has 4
    parent, children = parent_and_children("shared")
    runs = MlflowClient().search_runs([parent.info.experiment_id], "tags.`optuna.study` = 'shared'")
    assert [run.info.run_id for run in runs] == [parent.info.run_id]  # one parent
    assert len([c for c in children if c.info.status == "FINISHED"]) >= 4
