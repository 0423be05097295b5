"""The DVC stages of dvc.yaml, one module each (`python -m <package>.stages.<name>`), reading
params.yaml. dvc.yaml lists every module a stage imports as its dependency (a test checks)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from .. import environment
from ..commands import run_command
from ..config import Config
from ..settings import load_params

MODEL_DIR = Path("models/model")
RUN_FILE = Path("models/run.json")


def main(stage: Callable[[Config], object]) -> None:
    """Run `stage` on params.yaml; print what it returns; exit 2 on a user error."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    environment.load()

    def run() -> int:
        done = stage(load_params())
        if done is not None:
            print(done)
        return 0

    sys.exit(run_command(run))
