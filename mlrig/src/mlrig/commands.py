"""What a command of the command line is (`mlrig.cli`'s table, a project's own commands), and
how every command reports a user error: one line, exit code 2."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ProjectError


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A command without arguments."""


@dataclass(frozen=True)
class Command:
    help: str
    # Gets the project and the parsed options (the raw arguments, when `raw`).
    run: Callable[[Any, Any], int]
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    raw: bool = False  # the command parses its own arguments (Hydra)


def user_errors() -> tuple[type[BaseException], ...]:
    """What a command reports in one line: ours, a missing file, and MLflow's refusals (when
    MLflow is loaded at all: a command that never imports it never raises them)."""
    found: tuple[type[BaseException], ...] = (ProjectError, FileNotFoundError)
    mlflow_errors = sys.modules.get("mlflow.exceptions")
    return (*found, mlflow_errors.MlflowException) if mlflow_errors else found


class Terminated(KeyboardInterrupt):
    """SIGTERM: the command stops as Ctrl-C would stop it (a run in progress ends KILLED)."""


def _terminate(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the clean-up
    raise Terminated


def run_command(action: Callable[[], int]) -> int:
    """Run a command; a user error (a full disk too) prints `error: <message>` and exits 2;
    SIGTERM ends it through the same clean-up as an error, and exits 143."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return action()
    except Terminated:
        print("error: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except Exception as err:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            print(f"error: {full_disk(err)}", file=sys.stderr)
            return 2
        if not isinstance(err, user_errors()):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


def full_disk(error: OSError) -> str:
    where = f" that holds {error.filename}" if error.filename else ""
    return (
        f"no space left on the device{where}: free space there and run the command again "
        "(`make doctor` lists a run left unfinished)"
    )
