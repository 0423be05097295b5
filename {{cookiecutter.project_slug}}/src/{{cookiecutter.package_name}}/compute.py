"""`compute=dask`: XGBoost's Dask interface on a dask.distributed cluster.

Data is read in partitions (a folder of Parquet files or a CSV in blocks) and never has to
fit one process; only the held-out labels and scores are gathered for the metrics. The model
is converted to a plain `XGBClassifier`, so logging, the model format (UBJSON) and
registration are those of the local path and the logged model loads with the xgboost flavor.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
from dask.distributed import Client, LocalCluster
from xgboost import XGBClassifier
from xgboost import dask as dxgb

from .config import ComputeConfig, DataConfig, XGBoostConfig
from .data import SPLITS, DataError, missing_raw, validate
from .evaluate import Evaluation, score
from .train import TrainResult, xgboost_params, xgboost_result


@dataclass(frozen=True)
class DaskSplits:
    train: dd.DataFrame
    valid: dd.DataFrame
    test: dd.DataFrame


@contextmanager
def cluster(cfg: ComputeConfig) -> Iterator[Client]:
    """The default client for the job: the configured scheduler, or a LocalCluster that
    lives as long as the job (no dashboard; workers are processes)."""
    logging.getLogger("distributed").setLevel(logging.WARNING)  # no per-worker chatter
    if cfg.scheduler_address:
        with Client(cfg.scheduler_address) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=cfg.n_workers,
            threads_per_worker=cfg.threads_per_worker,
            memory_limit=cfg.memory_limit,
            processes=True,
            dashboard_address=None,
        ) as local,
        Client(local) as client,
    ):
        yield client


def check(frame: dd.DataFrame, cfg: DataConfig, source: str, min_rows: int | None) -> None:
    """The local schema checks on the column types, then one pass for labels and row count."""
    validate(frame.head(0), cfg, source)  # column types: the first partition's empty head
    rows, bad_labels = dask.compute(frame.shape[0], (~frame[cfg.target].isin([0, 1])).sum())
    if bad_labels:
        raise DataError(f"{source}: target {cfg.target!r} must be binary 0/1 ({bad_labels} rows)")
    if min_rows is not None and rows < min_rows:
        raise DataError(f"{source} has {rows} rows; data.min_rows is {min_rows}.")


def read_raw(cfg: DataConfig, compute: ComputeConfig) -> dd.DataFrame:
    path = Path(cfg.raw_path)
    if not path.exists():
        raise missing_raw(path)
    if path.is_dir():
        frame = dd.read_parquet(path)
    else:
        frame = dd.read_csv(path, blocksize=compute.partition_size)
    check(frame, cfg, str(path), cfg.min_rows)
    return frame


def split(frame: dd.DataFrame, cfg: DataConfig, seed: int) -> DaskSplits:
    """Random train/valid/test split, partition by partition (seeded)."""
    fractions = [1 - cfg.valid_size - cfg.test_size, cfg.valid_size, cfg.test_size]
    train, valid, test = frame.random_split(fractions, random_state=seed)
    return DaskSplits(train=train, valid=valid, test=test)


def write_splits(splits: DaskSplits, directory: str | Path) -> None:
    """One folder of Parquet files per split (replacing whatever the folder held)."""
    directory = Path(directory)
    shutil.rmtree(directory, ignore_errors=True)
    for name in SPLITS:
        getattr(splits, name).to_parquet(directory / name, write_index=False)


def read_splits(cfg: DataConfig) -> DaskSplits:
    frames = {}
    for name in SPLITS:
        path = Path(cfg.processed_dir) / name
        if not path.is_dir():
            raise DataError(f"{path} is missing: run `dvc repro prepare` with compute=dask first.")
        frames[name] = dd.read_parquet(path)
        validate(frames[name].head(0), cfg, str(path))
    return DaskSplits(**frames)


def train_xgboost(
    cfg: XGBoostConfig, seed: int, splits: DaskSplits, data: DataConfig
) -> TrainResult:
    """Fit on the cluster with the local path's parameters; return a plain XGBClassifier."""
    model = dxgb.DaskXGBClassifier(**xgboost_params(cfg, seed))
    # Materialised on the workers once, so features and labels share one partitioning (a
    # column projection could otherwise read the Parquet files into fewer partitions).
    train, valid = dask.persist(splits.train, splits.valid)
    model.fit(
        train[data.features],
        train[data.target],
        eval_set=[
            (train[data.features], train[data.target]),
            (valid[data.features], valid[data.target]),
        ],
        verbose=False,
    )
    plain = XGBClassifier(**xgboost_params(cfg, seed))
    plain.load_model(bytearray(model.get_booster().save_raw("ubj")))
    return xgboost_result(model, plain, cfg)


def evaluate(
    model: XGBClassifier, frame: dd.DataFrame, data: DataConfig, prefix: str
) -> Evaluation:
    """Score a split on the cluster; gather only its labels and scores."""
    scores = dxgb.inplace_predict(None, model.get_booster(), frame[data.features])
    y_score, y_true = dask.compute(scores, frame[data.target])
    return score(np.asarray(y_true), np.asarray(y_score), prefix)
