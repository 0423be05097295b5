"""`compute=local`: pandas frames in this process, for data that fits in memory."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import SPLITS, DataError, check_schema, missing_raw, read_table
from ..models.base import Labelled, ModelSpec, TrainResult
from ..report import Scored
from .base import Backend, Splits
from .kinds import LocalParams

log = logging.getLogger(__name__)


class LocalBackend(Backend[pd.DataFrame]):
    name = "local"
    params = LocalParams

    def load_splits(self) -> Splits[pd.DataFrame]:
        """Stratified train/valid/test split of the checked raw data (CSV or Parquet folder)."""
        from sklearn.model_selection import train_test_split

        path = Path(self.data.raw_path)
        if not path.exists():
            raise missing_raw(path)
        log.info("data: loading %s", path)
        frame = read_table(path)
        check_schema(frame, self.data, str(path), min_rows=self.data.min_rows)
        # Row positions are split, and the frame indexed once per split: the same splits
        # as splitting the frame itself, without copying the rows of train+valid in between.
        labels, seed = frame[self.data.target].to_numpy(), self.seed
        rest, test = train_test_split(
            np.arange(len(frame)), test_size=self.data.test_size, random_state=seed,
            stratify=labels,
        )  # fmt: skip
        valid_share = self.data.valid_size / (1 - self.data.test_size)
        train, valid = train_test_split(
            rest, test_size=valid_share, random_state=seed, stratify=labels[rest]
        )
        split = Splits(train=frame.iloc[train], valid=frame.iloc[valid], test=frame.iloc[test])
        return _logged(split)

    def write_splits(self, splits: Splits[pd.DataFrame]) -> None:
        directory = Path(self.data.processed_dir)
        shutil.rmtree(directory, ignore_errors=True)  # a persisted DVC output: replace it all
        directory.mkdir(parents=True)
        for name in SPLITS:
            getattr(splits, name).to_csv(directory / f"{name}.csv", index=False)

    def read_splits(self) -> Splits[pd.DataFrame]:
        frames = {}
        for name in SPLITS:
            path = Path(self.data.processed_dir) / f"{name}.csv"
            if not path.exists():
                raise DataError(f"{path} is missing: run `dvc repro prepare` first.")
            frames[name] = pd.read_csv(path)
            check_schema(frames[name], self.data, str(path))
        return _logged(Splits(**frames))

    def train(self, spec: ModelSpec[Any], params: Any, splits: Splits[pd.DataFrame]) -> TrainResult:
        return spec.fit(
            params, self.seed, self._labelled(splits.train), self._labelled(splits.valid)
        )

    def predict(self, spec: ModelSpec[Any], model: Any, frame: pd.DataFrame) -> Scored:
        split = self._labelled(frame)
        return Scored(split.target.to_numpy(), spec.scores(model, split.features))

    def describe(self, frame: pd.DataFrame, rows: int) -> tuple[pd.DataFrame, int]:
        return frame.head(rows), len(frame)

    def reference(self, frame: pd.DataFrame, rows: int) -> pd.DataFrame:
        return frame if len(frame) <= rows else frame.sample(rows, random_state=self.seed)

    def _labelled(self, frame: pd.DataFrame) -> Labelled:
        return Labelled(frame[self.data.features], frame[self.data.target])


def _logged(splits: Splits[pd.DataFrame]) -> Splits[pd.DataFrame]:
    sizes = ", ".join(f"{name} {len(getattr(splits, name))}" for name in SPLITS)
    log.info("data: %s rows", sizes)
    return splits
