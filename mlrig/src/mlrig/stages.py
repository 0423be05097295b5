"""The DVC stages of a project's dvc.yaml: `prepare` (the raw data checked and split) and
`train` (one MLflow run: fit, evaluate, register; its outputs the model and the report). Each
is a module of the project (`python -m <package>.stages.<name>`) calling `main` here.

DVC writes before a stage runs: `dvc exp run -S` rewrites params.yaml, `dvc repro` records a
changed raw file in its `.dvc` pointer. When a stage refuses that input, it puts back what DVC
changed, keeping the refused file beside it in .dvc/tmp (`make run` and `make exp` check the
inputs before DVC runs at all).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import environment
from .backends import backend_for
from .commands import run_command
from .config import PARAMS_FILE, Config, ConfigError
from .data import DataError
from .steps import train_and_register

if TYPE_CHECKING:
    from .project import Project

REFUSED_DIR = Path(".dvc/tmp/refused")  # what a restore replaced


def committed(path: Path) -> bytes | None:
    """`path` as the last commit holds it (None: not in git, or no git). Not the index:
    `dvc exp run` stages its own changes while the stages run."""
    try:
        shown = subprocess.run(
            ["git", "show", f"HEAD:./{path.as_posix()}"], capture_output=True, check=False
        )
    except OSError:
        return None
    return shown.stdout if shown.returncode == 0 else None


def restore(path: Path, previous: bytes | None, what: str) -> str:
    """Put `previous` back into `path` if it differs, keeping the refused file in .dvc/tmp;
    say so (empty: nothing to do)."""
    if previous is None or not path.exists() or path.read_bytes() == previous:
        return ""
    kept = REFUSED_DIR / path.name
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, kept)
    path.write_bytes(previous)
    return f" [{path} restored to {what}: DVC had written the refused input; it is kept in {kept}]"


def _params(project: Project) -> Config:
    """params.yaml, typed. Refused under `dvc exp run` (which wrote it from conf/ and the
    overrides), it is put back as git holds it; under `dvc repro` it is the user's own file
    and stays as it is."""
    params = Path(PARAMS_FILE)
    try:
        cfg = project.load_params()
    except ConfigError as err:
        if not os.environ.get("DVC_EXP_NAME"):
            raise
        note = restore(params, committed(params), "the committed one")
        raise ConfigError(f"{err}{note}") from err
    return cfg


def prepare(project: Project, cfg: Config) -> None:
    """The raw data checked, split and written to data.processed_dir."""
    backend = backend_for(project, cfg)
    pointer = Path(f"{cfg.data.raw_path}.dvc")
    with backend.session():
        try:
            splits = backend.load_splits()
        except DataError as err:  # `dvc repro` has recorded the refused file already
            note = restore(pointer, committed(pointer), "the committed pointer")
            raise DataError(f"{err}{note}") from err
        backend.write_splits(splits)


def train(project: Project, cfg: Config) -> object:
    """One run on the prepared splits; the model and the report are the stage's outputs."""
    return train_and_register(project, cfg, prepared=True)


def main(project: Project, stage: Callable[[Project, Config], object]) -> None:
    """Run `stage` on params.yaml; print what it returns; exit 2 on a user error."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def run() -> int:
        environment.configure(project.root)
        done = stage(project, _params(project))
        if done is not None:
            print(done)
        return 0

    sys.exit(run_command(run))
