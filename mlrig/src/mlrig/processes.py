"""Child processes started in a group of their own and stopped with everything they started
(an MLflow server's gunicorn or uvicorn workers), on POSIX and on Windows."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress
from typing import Any

WINDOWS = os.name == "nt"


def group_options(windows: bool = WINDOWS) -> dict[str, Any]:
    """Popen's options for a child that leads a group of its own: a new session on POSIX, a new
    process group on Windows (which CTRL_BREAK_EVENT reaches)."""
    if windows:
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)}
    return {"start_new_session": True}


def stop_group(
    process: subprocess.Popen[Any], *, force: bool = False, timeout_s: float = 20
) -> None:
    """Stop a child started with `group_options` and its group: SIGTERM (Windows:
    CTRL_BREAK_EVENT), SIGKILL after `timeout_s` or at once with `force` (Windows: the tree
    killed by taskkill); wait for it."""
    if process.poll() is None:
        if WINDOWS:
            _stop_windows(process, force, timeout_s)
        else:
            _killpg(process, signal.SIGKILL if force else signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _killpg(process, signal.SIGKILL)
    process.wait()


def _killpg(process: subprocess.Popen[Any], sent: int) -> None:
    with suppress(ProcessLookupError):  # the group ended between the poll and the signal
        os.killpg(process.pid, sent)


def _stop_windows(process: subprocess.Popen[Any], force: bool, timeout_s: float) -> None:
    if not force:
        try:
            process.send_signal(getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM))
            process.wait(timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired):  # no console to send it to; or too slow
            pass
    # The tree, whatever became of its leader: its workers may outlive it.
    command = ["taskkill", "/F", "/T", "/PID", str(process.pid)]
    subprocess.run(command, capture_output=True, check=False, timeout=60)
