"""Child processes started in a group of their own and stopped with everything they started
(an MLflow server's gunicorn or uvicorn workers), on POSIX and on Windows."""

from __future__ import annotations

import os
import signal
import subprocess
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
            os.killpg(process.pid, signal.SIGKILL if force else signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _stop_windows(process: subprocess.Popen[Any], force: bool, timeout_s: float) -> None:
    if not force:
        process.send_signal(getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM))
        try:
            process.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            pass
    command = ["taskkill", "/F", "/T", "/PID", str(process.pid)]
    subprocess.run(command, capture_output=True, check=False)
