"""Child process groups: a server and the workers it started stop together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from mlrig.processes import group_options, stop_group

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
# A parent that starts a child, prints the child's PID, then waits.
PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)
# A parent that ignores SIGTERM: only SIGKILL ends it.
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print(0, flush=True)\n"
    "time.sleep(60)\n"
)


def start(code: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                               **group_options())  # fmt: skip
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_group_options_per_platform() -> None:
    assert group_options(windows=False) == {"start_new_session": True}
    assert group_options(windows=True) == {"creationflags": 0x200}  # CREATE_NEW_PROCESS_GROUP


@posix_only
@pytest.mark.parametrize("force", [False, True])
def test_stop_group_stops_the_children_too(force: bool) -> None:
    parent, child = start(PARENT)
    stop_group(parent, force=force)
    assert parent.returncode == -(signal.SIGKILL if force else signal.SIGTERM)
    deadline = time.monotonic() + 10
    while not gone(child):  # the orphan, killed, is reaped by init
        assert time.monotonic() < deadline, f"child {child} outlived its group"
        time.sleep(0.05)


@posix_only
def test_a_group_that_ignores_sigterm_is_killed_after_the_timeout() -> None:
    parent, _ = start(STUBBORN)
    started = time.monotonic()
    stop_group(parent, timeout_s=0.5)
    assert parent.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_a_finished_process_is_only_waited_for() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"], **group_options())
    process.wait()
    stop_group(process)  # no signal to a group that is gone
    assert process.returncode == 0
