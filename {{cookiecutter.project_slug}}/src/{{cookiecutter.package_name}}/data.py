"""Raw data: materialise or synthesise it, verify it against DVC, check its schema.

Reading and splitting it is the compute backend's job (`backends/`)."""

from __future__ import annotations

import csv
import hashlib
import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .config import DataConfig, SyntheticConfig
from .errors import ProjectError

SPLITS = ("train", "valid", "test")
log = logging.getLogger(__name__)


class DataError(ProjectError):
    """The data is missing or does not match the configured schema."""


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tracked_md5(raw_path: str | Path) -> str | None:
    """The md5 DVC records for `raw_path` in its `.dvc` file (None when not tracked)."""
    dvc_file = Path(f"{raw_path}.dvc")
    if not dvc_file.exists():
        return None
    outs = yaml.safe_load(dvc_file.read_text())["outs"]
    return str(outs[0]["md5"])


def materialize(path: str | Path) -> Path:
    """Write the breast-cancer dataset shipped inside scikit-learn as a CSV, byte-for-byte stable.

    Floats are written with Python's shortest round-trip repr, so the bytes (and the md5 that
    DVC tracks) do not depend on the pandas version.
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    columns = [re.sub(r"\W+", "_", name.strip()).lower() for name in bunch.feature_names]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*columns, "target"])
        for row, target in zip(bunch.data, bunch.target, strict=True):
            writer.writerow([*(repr(float(value)) for value in row), int(target)])
    return path


def synthesize(path: str | Path, spec: SyntheticConfig, features: list[str], target: str) -> Path:
    """Write deterministic synthetic binary data as Parquet partitions of `partition_rows`.

    The label depends on the first `n_informative` features (linear terms plus one
    interaction) with logistic noise; the rest are noise. Features are float32 (what
    gradient-boosting libraries train on). Each partition has its own seeded generator, so
    memory stays bounded.
    """
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    weights = np.random.default_rng(spec.seed).normal(size=spec.n_informative)
    starts = range(0, spec.n_rows, spec.partition_rows)
    every = max(1, len(starts) // 10)
    for part, start in enumerate(starts):
        if part % every == 0:
            log.info("synthetic data: partition %d/%d", part + 1, len(starts))
        rng = np.random.default_rng([spec.seed, part])
        rows = min(spec.partition_rows, spec.n_rows - start)
        values = rng.standard_normal((rows, len(features)), dtype=np.float32)
        logit = values[:, : spec.n_informative] @ weights + values[:, 0] * values[:, 1]
        label = (logit + rng.logistic(size=rows) > 0).astype(np.int8)
        frame = pd.DataFrame(values, columns=features).assign(**{target: label})
        frame.to_parquet(path / f"part-{part:05d}.parquet", index=False)
    return path


def dvc(*args: str) -> subprocess.CompletedProcess[str]:
    local = Path(sys.executable).with_name("dvc")
    executable = str(local) if local.exists() else (shutil.which("dvc") or "dvc")
    return subprocess.run([executable, *args], capture_output=True, text=True, check=False)


def fetch(cfg: DataConfig) -> str:
    """Make the tracked raw data present: `dvc pull`, else materialise it and push it.

    The materialised bytes must match the md5 in the `.dvc` file, so every machine trains on
    exactly the tracked version. Returns what was done.
    """
    path = Path(cfg.raw_path)
    if cfg.synthetic:
        synthesize(path, cfg.synthetic, cfg.features, cfg.target)
        return f"{path} generated: {cfg.synthetic.n_rows} rows (seed {cfg.synthetic.seed})."
    expected = tracked_md5(path)
    if expected is None:
        raise DataError(f"{path}.dvc is missing: track the data with `dvc add {path}`.")
    if path.exists() and file_md5(path) == expected:
        return f"{path} is present (md5 {expected})."
    if dvc("pull", f"{path}.dvc").returncode == 0 and file_md5(path) == expected:
        return f"{path} pulled from the DVC remote (md5 {expected})."
    materialize(path)
    actual = file_md5(path)
    if actual != expected:
        raise DataError(
            f"materialised {path} has md5 {actual}, but {path}.dvc tracks {expected}: "
            "fetch the tracked version with `dvc pull` from the team remote."
        )
    committed = dvc("commit", "--force", f"{path}.dvc")
    if committed.returncode != 0:
        raise DataError(f"`dvc commit` failed: {committed.stderr.strip()}")
    made = f"{path} materialised from scikit-learn (md5 {actual})"
    pushed = dvc("push", f"{path}.dvc")
    if pushed.returncode != 0:  # the data is here and verified; only sharing it waits
        reason = (pushed.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{made}; NOT pushed ({reason}): configure the DVC remote, then `dvc push`."
    return f"{made} and pushed to the DVC remote."


def missing_raw(path: Path) -> DataError:
    return DataError(f"{path} is missing: run `make data` (dvc pull, or generate synthetic data).")


@dataclass(frozen=True)
class Profile:
    """What the data checks look at: row count, column types, missing values per column, and
    target values other than 0/1 (one pass over the data)."""

    rows: int
    dtypes: dict[str, Any]
    missing: dict[str, int]
    bad_labels: int


def profile(frame: pd.DataFrame, target: str) -> Profile:
    labels = frame[target] if target in frame.columns else pd.Series([], dtype="int8")
    return Profile(
        rows=len(frame),
        dtypes=dict(frame.dtypes),
        missing={str(k): int(v) for k, v in frame.isna().sum().items()},
        bad_labels=int((~labels.isin([0, 1]) & labels.notna()).sum()),
    )


def check_profile(seen: Profile, cfg: DataConfig, source: str, min_rows: int | None = None) -> None:
    """Refuse what the model must not train on, the first problem first: too few rows, then
    schema drift (missing or unexpected columns, non-numeric features), then the values (a
    gap or a label other than 0/1 in the target, gaps in features under data.missing_values)."""
    if seen.rows == 0 or (min_rows is not None and seen.rows < min_rows):
        least = f"data.min_rows is {min_rows}" if min_rows else "the splits must not be empty"
        raise DataError(f"{source} has {seen.rows} data rows; {least}.")
    check_columns(seen.dtypes, cfg, source)
    if seen.missing.get(cfg.target):
        raise DataError(
            f"{source}: target column {cfg.target!r} has {seen.missing[cfg.target]} missing values."
        )
    if seen.bad_labels:
        raise DataError(
            f"{source}: target {cfg.target!r} must be binary 0/1 ({seen.bad_labels} rows are not)."
        )
    gaps = {c: seen.missing[c] for c in cfg.features if seen.missing.get(c)}
    if gaps and cfg.missing_values == "refuse":
        raise DataError(
            f"{source}: missing values in features {gaps}: fill or drop them, or set "
            "data.missing_values=allow for a model kind that handles them."
        )


def check_columns(dtypes: dict[str, Any], cfg: DataConfig, source: str) -> None:
    """Schema drift: missing or unexpected columns, non-numeric features."""
    expected = [*cfg.features, cfg.target]
    missing = [column for column in expected if column not in dtypes]
    unexpected = [column for column in dtypes if column not in expected]
    if missing or unexpected:
        raise DataError(
            f"{source} does not match data.features/data.target: "
            f"missing columns {missing}, unexpected columns {unexpected}. "
            "Update conf/data/ if the schema changed on purpose."
        )
    numeric = pd.api.types.is_numeric_dtype
    non_numeric = [c for c in cfg.features if not numeric(dtypes[c])]
    if non_numeric:
        raise DataError(f"{source}: feature columns must be numeric, got {non_numeric}.")


def check_schema(
    frame: pd.DataFrame, cfg: DataConfig, source: str, min_rows: int | None = None
) -> None:
    """The data checks (check_profile) on a pandas frame."""
    check_profile(profile(frame, cfg.target), cfg, source, min_rows)
