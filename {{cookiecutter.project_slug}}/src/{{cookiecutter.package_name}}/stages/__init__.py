"""The DVC stages of dvc.yaml, one module each (`python -m <package>.stages.<name>`), reading
params.yaml. dvc.yaml lists every module a stage imports as its dependency (a test checks).

DVC writes before a stage runs: `dvc exp run -S` rewrites params.yaml, `dvc repro` records a
changed raw file in its `.dvc` pointer. When a stage refuses that input, it puts back what DVC
changed, keeping the refused file beside it in .dvc/tmp (`make run` and `make exp` check the
inputs before DVC runs at all).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import environment
from ..commands import run_command
from ..config import PARAMS_FILE, Config, ConfigError
from ..settings import load_params

MODEL_DIR = Path("models/model")
# The train stage's run, for the evaluate stage: git-ignored and no DVC output (a forced re-run
# makes a new run of the same model; dvc.lock must not change). Its model_uuid ties it to
# MODEL_DIR; the evaluate stage marks it evaluated. A train run that reproduces the recorded model
# byte for byte leaves DVC nothing to evaluate: `make run` then forces the evaluate stage.
RUN_FILE = Path("models/run.json")
PRODUCED_TAG = "dvc.model_uuid"  # the train stage's run: the model_uuid of what it saved
MODEL_URI_TAG = "dvc.model_uri"
REFUSED_DIR = Path(".dvc/tmp/refused")  # what a restore replaced


def record_run(produced: dict[str, Any]) -> None:
    """Write RUN_FILE: the train stage's run, as the evaluate stage reads it."""
    RUN_FILE.write_text(json.dumps(produced, indent=2) + "\n")


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


def _params() -> Config:
    """params.yaml, typed. Refused under `dvc exp run` (which wrote it from conf/ and the
    overrides), it is put back as git holds it; under `dvc repro` it is the user's own file
    and stays as it is."""
    params = Path(PARAMS_FILE)
    try:
        cfg = load_params()
    except ConfigError as err:
        if not os.environ.get("DVC_EXP_NAME"):
            raise
        note = restore(params, committed(params), "the committed one")
        raise ConfigError(f"{err}{note}") from err
    return cfg


def main(stage: Callable[[Config], object]) -> None:
    """Run `stage` on params.yaml; print what it returns; exit 2 on a user error."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    environment.load()

    def run() -> int:
        done = stage(_params())
        if done is not None:
            print(done)
        return 0

    sys.exit(run_command(run))
