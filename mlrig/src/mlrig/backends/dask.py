"""`compute=dask`: a dask.distributed cluster, for data that does not fit one process.

Data is read in partitions (a folder of Parquet files or a CSV in blocks); only the held-out
labels and scores are gathered for the metrics. Models train through their spec's Dask
implementation (`DaskTrainable`: `XGBoostModel` has one), which returns a plain model:
logging, the native format and registration are those of the local path.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..data import (
    SPLITS,
    DataError,
    Profile,
    check_columns,
    check_profile,
    missing_raw,
    numeric_columns,
)
from ..models.base import ModelSpec, TrainResult
from ..report import Scored
from .base import Backend, Splits
from .kinds import DaskParams, DaskTrainable

if TYPE_CHECKING:
    import dask.dataframe as dd


# Set in each worker process before it starts: what Arrow frees after reading Parquet goes
# back to malloc (which Dask's workers trim) instead of staying in Arrow's own pool (~0.6 GiB
# at 10M rows).
WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.ARROW_DEFAULT_MEMORY_POOL": "system"}


class DaskBackend(Backend["dd.DataFrame"]):
    name = "dask"
    params = DaskParams

    settings: DaskParams

    @contextmanager
    def session(self) -> Iterator[object]:
        """The default client for the job: the configured scheduler, or a LocalCluster that
        lives as long as the job (no dashboard; workers are processes, WORKER_ENVIRON)."""
        import dask
        from dask.distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.WARNING)  # no per-worker chatter
        if self.settings.scheduler_address:
            with Client(self.settings.scheduler_address) as client:
                yield client
            return
        with (
            dask.config.set(WORKER_ENVIRON),
            LocalCluster(
                n_workers=self.settings.n_workers,
                threads_per_worker=self.settings.threads_per_worker,
                memory_limit=self.settings.memory_limit,
                processes=True,
                dashboard_address=None,
            ) as local,
            Client(local) as client,
        ):
            yield client

    def load_splits(self) -> Splits[dd.DataFrame]:
        """Random train/valid/test split, partition by partition (seeded)."""
        import dask.dataframe as dd

        path = Path(self.data.raw_path)
        if not path.exists():
            raise missing_raw(path)
        if path.is_dir():
            frame = dd.read_parquet(path)
        else:
            frame = dd.read_csv(path, blocksize=self.settings.partition_size)
        self._check(frame, str(path))
        fractions = [1 - self.data.valid_size - self.data.test_size, self.data.valid_size]
        train, valid, test = frame.random_split(
            [*fractions, self.data.test_size], random_state=self.seed
        )
        return Splits(train=train, valid=valid, test=test)

    def _check(self, frame: dd.DataFrame, source: str) -> None:
        """The local data checks, on what one pass over the partitions counts."""
        import dask

        target = self.data.target
        labels = frame[target] if target in frame.columns else None
        bad = (~labels.isin([0, 1]) & ~labels.isna()).sum() if labels is not None else 0
        each = [(labels == label).sum() if labels is not None else 0 for label in (0, 1)]
        rows, missing, bad_labels, *class_rows = dask.compute(
            frame.shape[0], frame.isna().sum(), bad, *each
        )
        seen = Profile(
            rows=int(rows),
            numeric=numeric_columns(frame.dtypes),
            missing={str(k): int(v) for k, v in missing.items()},
            bad_labels=int(bad_labels),
            class_rows={label: int(n) for label, n in zip((0, 1), class_rows, strict=True)},
        )
        check_profile(seen, self.data, source, self.data.min_rows)

    def write_splits(self, splits: Splits[dd.DataFrame]) -> None:
        """One folder of Parquet files per split."""
        directory = Path(self.data.processed_dir)
        shutil.rmtree(directory, ignore_errors=True)
        for name in SPLITS:
            getattr(splits, name).to_parquet(directory / name, write_index=False)

    def read_splits(self) -> Splits[dd.DataFrame]:
        import dask.dataframe as dd

        frames = {}
        for name in SPLITS:
            path = Path(self.data.processed_dir) / name
            if not path.is_dir():
                raise DataError(f"{path} is missing: run `dvc repro prepare` with compute=dask.")
            frames[name] = dd.read_parquet(path)
            check_columns(numeric_columns(frames[name].dtypes), self.data, str(path))
        return Splits(**frames)

    def train(self, spec: ModelSpec[Any], params: Any, splits: Splits[dd.DataFrame]) -> TrainResult:
        assert isinstance(spec, DaskTrainable)  # check() refused other specs
        return spec.fit_dask(
            params, self.seed, splits.train, splits.valid, self.data.features, self.data.target
        )

    def predict(self, spec: ModelSpec[Any], model: Any, frame: dd.DataFrame) -> Scored:
        """Score on the cluster; gather only the labels and scores."""
        import dask

        assert isinstance(spec, DaskTrainable)
        scores = spec.scores_dask(model, frame[self.data.features])
        y_score, y_true = dask.compute(scores, frame[self.data.target])
        return Scored(np.asarray(y_true), np.asarray(y_score))

    def describe(self, frame: dd.DataFrame, rows: int) -> tuple[pd.DataFrame, int]:
        """The first partition's first rows; one pass over the data for the count."""
        return frame.partitions[0].compute().head(rows), int(frame.shape[0].compute())

    def reference(self, frame: dd.DataFrame, rows: int) -> pd.DataFrame:
        """A sample of every partition (one pass to count, one to sample)."""
        share = min(1.0, rows / max(1, int(frame.shape[0].compute())))
        return frame.sample(frac=share, random_state=self.seed).compute()
