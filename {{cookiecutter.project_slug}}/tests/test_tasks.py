"""tasks.py, the runner that needs no make: every Makefile target is one of its tasks."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest
from mlrig.tracking.store import LOCAL_UI

from {{ cookiecutter.package_name }}.project import PROJECT

PROJECT_ROOT = PROJECT.root


def load_tasks():
    spec = importlib.util.spec_from_file_location("tasks", PROJECT_ROOT / "tasks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tasks(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "tasks.py", *args]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)


def test_every_make_target_is_a_task() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    targets = re.search(r"^TASKS := (.+)$", makefile, re.MULTILINE)
    assert targets is not None
    assert set(targets[1].split()) == set(load_tasks().TASKS)


def test_make_ui_serves_where_run_summaries_link() -> None:
    assert f"http://{':'.join(load_tasks().UI_ADDRESS)}" == LOCAL_UI


def test_tasks_run_without_make() -> None:
    listed = tasks("help")
    assert listed.returncode == 0
    assert {line.split()[0] for line in listed.stdout.splitlines()} == set(load_tasks().TASKS)
    linted = tasks("lint")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    unknown = tasks("deploy")
    assert unknown.returncode == 2 and "unknown task(s) ['deploy']" in unknown.stderr


def test_setup_compiles_bytecode_ahead_unless_told_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    compile_ahead = load_tasks().compile_ahead
    monkeypatch.delenv("BYTECODE", raising=False)
    assert compile_ahead()
    for value, ahead in (("", True), ("1", True), ("0", False)):  # make exports "" when unset
        monkeypatch.setenv("BYTECODE", value)
        assert compile_ahead() is ahead
    monkeypatch.setenv("BYTECODE", "no")
    with pytest.raises(SystemExit, match='BYTECODE must be 0 or 1, not "no"'):
        compile_ahead()
