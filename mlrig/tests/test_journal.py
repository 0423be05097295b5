"""The journal's replay on the embedded store, no server: every operation of the table is
delivered into the spooled run, an interrupted replay resumes after the last delivered entry,
and a journal that cannot be replayed (another store's, an unknown operation, no header) is
refused with the reason and kept."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GOOD, RAW, tracking
from mlflow import MlflowClient
from mlflow.entities import Metric

import mlrig
from mlrig import Project
from mlrig.data import DataError
from mlrig.tracking import journal
from mlrig.tracking.store import Tracking


def spooled(store: Tracking, *entries: tuple[str, tuple]) -> tuple[str, Path]:
    """A run of the store and its journal: a header, then one entry per (op, objects)."""
    run_id = store.client.create_run(store.ensure_experiment()).info.run_id
    folder = store.spool_root / run_id
    journal.append(folder, journal.write("run", folder, run_id, store.uri, "test"))
    for name, objects in entries:
        journal.append(folder, journal.write(name, folder, *objects))
    return run_id, folder


@pytest.fixture
def store(project: Project, spooling: Path) -> Tracking:
    """The workspace's store, its spool in the workspace."""
    connected = tracking()
    assert connected.spool_root == spooling
    return connected


def test_every_operation_is_replayed_into_the_run(project: Project, store: Tracking) -> None:
    run_id, folder = spooled(
        store,
        ("tags", ({"team": "replayed"},)),
        ("params", ({"model.C": "1.0"},)),
        ("metrics", ([Metric("test_auc", 0.9, 0, 0), Metric("iter_loss", 0.5, 0, 3)],)),
        ("end", ("FINISHED",)),
    )
    lines, complete = journal.sync(project, store)
    assert complete and lines == [f"{run_id}: replayed 4 logging calls into {store.uri}"], lines
    run = store.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["team"] == "replayed" and run.data.params["model.C"] == "1.0"
    assert run.data.metrics == {"test_auc": 0.9, "iter_loss": 0.5}
    assert not folder.exists()


def test_an_interrupted_replay_resumes_after_the_last_delivered_entry(
    project: Project, store: Tracking
) -> None:
    run_id, folder = spooled(
        store,
        ("tags", ({"stage": "journaled"},)),
        ("tags", ({"more": "yes"},)),
        ("end", ("FINISHED",)),
    )
    store.client.set_tag(run_id, "stage", "delivered before the interruption")
    (folder / journal.PROGRESS).write_text(json.dumps({"done": 1}))  # the first tags went
    assert journal.sync(project, store)[1]
    tags = store.client.get_run(run_id).data.tags
    assert (tags["stage"], tags["more"]) == ("delivered before the interruption", "yes")


def test_a_resumed_replay_links_the_metrics_to_the_model_it_logged(
    project: Project, store: Tracking, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server went away right after the model was logged: the next `sync` delivers the
    model's metrics to that very logged model (its id kept with the progress)."""
    import pandas as pd

    frame = pd.read_csv(RAW)
    spec = project.model("linear")
    cfg = project.load_params()
    features = frame[cfg.data.features]
    model = spec.estimator(cfg.model, 0).fit(features, frame[cfg.data.target])
    auc = [Metric("test_auc", 0.93, 0, 0)]
    run_id, folder = spooled(
        store,
        ("model", (spec, model, features.head(20))),
        ("model_metrics", (auc, {})),
        ("end", ("FINISHED",)),
    )
    metrics_op = journal.OPS["model_metrics"]

    def server_gone(delivery: journal.Delivery, entry: dict) -> None:
        raise ConnectionError("the server went away")

    monkeypatch.setitem(journal.OPS, "model_metrics", journal.Op(metrics_op.write, server_gone))
    with pytest.raises(ConnectionError):
        journal.sync(project, store)
    monkeypatch.setitem(journal.OPS, "model_metrics", metrics_op)
    assert json.loads((folder / journal.PROGRESS).read_text())["done"] == 1
    assert journal.sync(project, store)[1]
    (logged,) = store.client.search_logged_models(
        experiment_ids=[store.client.get_run(run_id).info.experiment_id]
    )
    assert [(m.key, m.value) for m in logged.metrics] == [("test_auc", 0.93)]


@pytest.mark.parametrize("end", ["sync", "abandon"])
def test_a_model_upload_the_server_never_finished_ends_failed(
    project: Project, store: Tracking, end: str
) -> None:
    """The server died between creating the run's logged model and finalising it: once the
    job is over, `sync` (or `--abandon`) marks it FAILED; the run's other models are kept."""
    run_id, _ = spooled(store, ("end", ("FINISHED",)))
    experiment = store.client.get_run(run_id).info.experiment_id
    unfinished = store.client.create_logged_model(experiment, source_run_id=run_id)
    ready = store.client.create_logged_model(experiment, source_run_id=run_id)
    store.client.finalize_logged_model(ready.model_id, "READY")
    other_run = store.client.create_logged_model(experiment)  # no run: not this job's
    if end == "sync":
        (line,), complete = journal.sync(project, store)
        assert complete
    else:
        line = journal.abandon(store, run_id)
    assert "1 unfinished model upload(s) marked FAILED" in line
    status = {m: str(store.client.get_logged_model(m).status) for m in
              (unfinished.model_id, ready.model_id, other_run.model_id)}  # fmt: skip
    assert list(status.values()) == ["FAILED", "READY", "PENDING"]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda lines: [lines[0].replace("sqlite", "http"), *lines[1:]], "was spooled for"),
        (lambda lines: [*lines[:-1], '{"op": "teleport"}', lines[-1]], "unknown journal operation"),
        (lambda lines: lines[1:], "does not start with its run"),
    ],
)
def test_a_journal_that_cannot_be_replayed_is_kept_with_the_reason(
    project: Project, store: Tracking, damage, reason: str
) -> None:
    run_id, folder = spooled(store, ("tags", ({"a": "b"},)), ("end", ("FINISHED",)))
    lines = (folder / journal.JOURNAL).read_text().splitlines()
    (folder / journal.JOURNAL).write_text("\n".join(damage(lines)) + "\n")
    (line,), complete = journal.sync(project, store)
    assert not complete and line.startswith(f"{run_id}: not replayed: SyncError") and reason in line
    assert (folder / journal.JOURNAL).exists()
    assert "a" not in store.client.get_run(run_id).data.tags


def test_a_torn_last_line_is_reported_never_replayed_half(
    project: Project, store: Tracking
) -> None:
    run_id, folder = spooled(store, ("tags", ({"a": "b"},)), ("end", ("FINISHED",)))
    text = (folder / journal.JOURNAL).read_text()
    (folder / journal.JOURNAL).write_text(text[: len(text) - 5])  # the end's line, cut
    (line,), complete = journal.sync(project, store)
    assert not complete and "a torn journal line" in line and "`sync --abandon`" in line
    assert "a" not in store.client.get_run(run_id).data.tags


def mounted(folder: Path, size: int) -> Iterator[Path]:
    """A `size`-byte filesystem (tmpfs) at `folder`: writing there soon fails with ENOSPC.
    Unmounted lazily: a store's engine may still hold its file open."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    done = subprocess.run(mount, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"no tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    yield from mounted(tmp_path / "small", 64 * 1024)


def test_a_full_disk_leaves_whole_journal_lines(full_disk: Path) -> None:
    """Appending to the spool until the disk is full: the write that fails leaves no part of
    its line, and every line there is whole."""
    entry = {"op": "tags", "tags": {"padding": "x" * 5000}}
    with pytest.raises(OSError) as full:
        for _ in range(100):
            journal.append(full_disk, entry)
    assert full.value.errno == errno.ENOSPC
    text = (full_disk / journal.JOURNAL).read_text()
    assert text.endswith("\n") and all(json.loads(line) == entry for line in text.splitlines())


def test_a_full_disk_ends_a_command_in_one_line(full_disk: Path, capsys) -> None:
    from mlrig.commands import run_command

    def fills_the_disk() -> int:
        while True:
            journal.append(full_disk, {"op": "tags", "tags": {"padding": "x" * 5000}})

    assert run_command(fills_the_disk) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: no space left on the device that holds ") and "journal" in line


def test_mlrig_debug_shows_the_traceback_of_a_user_error(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from mlrig.commands import run_command

    def refused() -> int:
        raise DataError("data/raw.csv is missing: run `make data`")

    assert run_command(refused) == 2
    assert capsys.readouterr().err == "error: data/raw.csv is missing: run `make data`\n"
    monkeypatch.setenv("MLRIG_DEBUG", "1")
    with pytest.raises(DataError, match="is missing"):
        run_command(refused)


def test_a_full_disk_under_the_sqlite_store_ends_the_job_in_one_line(
    project: Project, workspace: Path, monkeypatch, capsys
) -> None:
    """The store's disk fills while the run logs: one line names the store, the run ends
    FAILED, no version is registered."""
    store = workspace / "mlflow.db"
    # room for the store as created and ~40 KiB more: a few of the run's rows
    for small in mounted(workspace / "small", store.stat().st_size + 40 * 1024):
        shutil.copy(store, small / store.name)
        uri = f"sqlite:///{small / store.name}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        with pytest.raises(SystemExit) as exited:
            mlrig.main(project, ["train", *GOOD])
        assert exited.value.code == 2
        said = capsys.readouterr()
        assert "Traceback" not in said.out + said.err
        (line,) = [line for line in said.out.splitlines() if line.startswith("error:")]
        assert line.startswith(f"error: no space left on the device that holds the tracking "
                               f"store ({uri}): free space there")  # fmt: skip
        client = MlflowClient(uri)
        (run,) = client.search_runs([client.get_experiment_by_name(
            project.load_params().tracking.experiment_name).experiment_id])  # fmt: skip
        assert run.info.status == "FAILED"
        assert client.search_model_versions() == []
