"""Where a run came from: code version (git), data version (DVC md5), the library's version,
DVC experiment, team tags, and dataset inputs."""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Dataset

from ..config import Config
from ..data import tracked_md5

# Rows that describe a dataset's schema: its columns are numeric (the data checks refuse
# others), so their dtypes give the types; MLflow's inference costs ~0.25 s per 10k rows x 20.
DATASET_HEAD_ROWS = 1_000


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=Path.cwd()
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def git_status() -> str | None:
    """`git status --porcelain` of tracked files (empty when clean; None outside a repo)."""
    return _git("status", "--porcelain", "--untracked-files=no")


def lineage_tags(cfg: Config) -> dict[str, str]:
    """Code version, data version, DVC experiment and the team tags of conf/tracking."""
    tags = {key: str(value) for key, value in cfg.tracking.tags.items() if value is not None}
    sha = _git("rev-parse", "HEAD")
    tags["git.commit"] = sha or "unknown"
    status = git_status()
    tags["git.dirty"] = "unknown" if status is None else str(bool(status)).lower()
    tags["data.dvc_md5"] = tracked_md5(cfg.data.raw_path) or "untracked"
    tags["data.path"] = cfg.data.raw_path
    tags["mlrig.version"] = version("mlrig")  # the machinery's version, as uv.lock pins it
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc.exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags


def dataset(cfg: Config, head: pd.DataFrame, rows: int, context: str) -> Dataset:
    """Dataset lineage for a split: source path, DVC md5 as digest, the true row count as
    profile, and the schema of its first rows `head`.

    MLflow infers a schema by checking every value in Python (~15 s for 300k rows x 20); the
    first rows give the same column types at a fixed cost.
    """
    with warnings.catch_warnings():  # MLflow registers two equivalent local-file sources
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
        source = mlflow.data.from_pandas(
            head,
            source=Path(cfg.data.raw_path).resolve().as_uri(),
            targets=cfg.data.target,
            name=f"{cfg.data.name}-{context}",
            digest=(tracked_md5(cfg.data.raw_path) or "")[:8] or None,
        )
    described = source.to_dict()
    described["profile"] = json.dumps({"num_rows": rows, "num_elements": rows * head.shape[1]})
    return Dataset(**described)
