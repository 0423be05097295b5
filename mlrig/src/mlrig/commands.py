"""What a command of the command line is (`mlrig.cli`'s table, a project's own commands), and
how every command reports a user error: one line, exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
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


# MLflow hints that integer columns cannot hold missing values; the 0/1 labels (model output,
# dataset target) never do. For every command, the DVC stages' too.
warnings.filterwarnings("ignore", message=r".*Inferred schema contains integer column")
DEBUG = "MLRIG_DEBUG"  # set (not 0): a user error shows its traceback instead of one line


def run_command(action: Callable[[], int]) -> int:
    """Run a command; a user error (a full disk too) prints `error: <message>` and exits 2
    (with MLRIG_DEBUG=1, its traceback); SIGTERM ends it through the same clean-up as an
    error, and exits 143."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return action()
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (Terminated)
        _end_left_run("KILLED")
        sigterm = isinstance(stop, Terminated)
        print(f"error: {'terminated (SIGTERM)' if sigterm else 'interrupted (Ctrl-C)'}",
              file=sys.stderr)  # fmt: skip
        return 128 + (signal.SIGTERM if sigterm else signal.SIGINT)
    except Exception as err:
        _end_left_run("FAILED")
        line = one_line(err)
        if line is None or os.environ.get(DEBUG, "") not in ("", "0"):
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2


def _end_left_run(status: str) -> None:
    """A run the command left active (stopped before its own clean-up took over) ends with
    `status`: at exit MLflow would end it FINISHED."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is None or mlflow.active_run() is None:
        return
    from .tracking.delivery import end_active_run, no_retries

    with no_retries(), contextlib.suppress(Exception):  # the error being reported comes first
        end_active_run(status)


def one_line(error: Exception) -> str | None:
    """What a command says of an error in one line: a full disk, or a user error's message;
    None for an error that is a bug (its traceback is shown)."""
    return full_disk(error) or (str(error) if isinstance(error, user_errors()) else None)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and those it was raised from or while handling, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def full_disk(error: BaseException) -> str | None:
    """One line for a full disk anywhere in the error's chain (a file's ENOSPC, or SQLite's
    "database or disk is full" under a sqlite tracking store); None for any other error."""
    for cause in _causes(error):
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            where = f" that holds {cause.filename}" if cause.filename else ""
            break
        if SQLITE_FULL in str(cause):
            where = f" that holds the tracking store ({_store()})"
            break
    else:
        return None
    return (
        f"no space left on the device{where}: free space there and run the command again "
        "(`make doctor` lists a run left unfinished)"
    )


SQLITE_FULL = "database or disk is full"


def _store() -> str:
    mlflow = sys.modules.get("mlflow")
    return mlflow.get_tracking_uri() if mlflow else "MLFLOW_TRACKING_URI"
