"""tasks.py, the runner that needs no make: every Makefile target is one of its tasks."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml
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


# A command that, on Ctrl-C, takes a while to clean up (as a run ending KILLED does), then
# says so and exits 130.
CLEANING_UP = """
import sys, time
from pathlib import Path
Path(sys.argv[1]).write_text("started")
try:
    time.sleep(60)
except KeyboardInterrupt:
    time.sleep(1)
    Path(sys.argv[1]).write_text("cleaned up")
    print("error: interrupted (Ctrl-C)", file=sys.stderr)
    sys.exit(130)
"""
RUNNER = "import sys, tasks; tasks.sh(sys.executable, '-c', sys.argv[1], sys.argv[2])"


@pytest.mark.skipif(os.name == "nt", reason="a terminal's Ctrl-C to a POSIX process group")
def test_ctrl_c_lets_the_command_clean_up_and_ends_in_its_line(tmp_path) -> None:
    """Ctrl-C reaches the task and its command (one process group): the task waits for the
    command's clean-up, prints no traceback of its own, and exits with the command's code."""
    marker = tmp_path / "state"
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, CLEANING_UP, str(marker)],
        cwd=PROJECT_ROOT, start_new_session=True, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # Ctrl-C's default handling, even under a shell that started this suite ignoring it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(runner.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, err = runner.communicate(timeout=30)
    assert runner.returncode == 130
    assert marker.read_text() == "cleaned up"
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "error: interrupted (Ctrl-C)"


def test_an_older_python_is_refused_naming_the_one_to_use() -> None:
    """Not uv's lock check ("run make lock"): the Python that makes the venv is too old."""
    tasks = load_tasks()
    with pytest.raises(SystemExit, match=r"the project needs >=\d+\.\d+ \(requires-python in "
                       r"pyproject\.toml\): `make setup PYTHON=python\d+\.\d+`"):  # fmt: skip
        tasks.check_python((3, 8))
    tasks.check_python(sys.version_info[:2])  # the venv's own


def test_an_s3_endpoint_for_a_remote_not_on_s3_is_named_and_ignored(capsys) -> None:
    tasks = load_tasks()
    name, url = tasks.default_remote()
    assert name and url  # as .dvc/config says
    tasks.point_s3_remote("http://127.0.0.1:9", name, "../.dvc-storage")
    assert capsys.readouterr().out.strip() == (
        f"note: DVC_S3_ENDPOINT_URL is set, but the default DVC remote {name!r} is not on S3 "
        "(../.dvc-storage): the variable is ignored"
    )


def test_the_venv_layout_per_platform(tmp_path) -> None:
    """bin/ and bare names on Linux and macOS, Scripts/ and .exe on Windows; this machine's
    venv is where tasks.py looks for it."""
    module = load_tasks()
    assert module.scripts(tmp_path, windows=False) == tmp_path / "bin"
    assert module.scripts(tmp_path, windows=True) == tmp_path / "Scripts"
    assert module.executable(tmp_path, "python", windows=True) == tmp_path / "python.exe"
    assert module.executable(tmp_path, "python", windows=False) == tmp_path / "python"
    assert module.executable(module.BIN, "python").is_file()
    assert module.UV.parent == PROJECT_ROOT / ".uv" / "bin"  # pip --target's, on every platform


def test_a_stage_on_windows_waits_for_its_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no exec: the task runs the stage as a child and exits with its code (an
    os.execv there would end the task at once, and DVC would take the stage as done)."""
    module = load_tasks()
    called: list[list[str]] = []
    monkeypatch.setattr(module, "WINDOWS", True)
    monkeypatch.setattr(module.os, "execv", lambda *args: pytest.fail("exec on Windows"))
    monkeypatch.setattr(module.subprocess, "call", lambda command: called.append(command) or 3)
    with pytest.raises(SystemExit) as stopped:
        module.stage(["prepare"])
    assert stopped.value.code == 3
    package = "{{ cookiecutter.package_name }}"
    assert called == [[str(module.interpreter()), "-m", f"{package}.stages.prepare"]]


def test_every_git_hook_runs_a_tool_the_venv_or_uv_provides() -> None:
    """The hooks name their tools through `tasks.py tool` (no path of one platform's venv),
    and each named tool is installed by `make hooks` (the dev group)."""
    module = load_tasks()
    config = yaml.safe_load((PROJECT_ROOT / ".pre-commit-config.yaml").read_text())
    entries = [hook["entry"].split() for repo in config["repos"] for hook in repo["hooks"]]
    assert entries and all(entry[:4] == ["python3", "tasks.py", "tool", "--"] for entry in entries)
    tools = {entry[4] for entry in entries} - {"uv"}
    assert {name for name in tools if not module.executable(module.BIN, name).is_file()} == set()
    refused = tasks("tool")
    assert refused.returncode == 1 and "tool: name it" in refused.stderr
