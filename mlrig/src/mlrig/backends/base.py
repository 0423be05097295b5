"""What every compute backend provides: read and check the raw data, split it, write and read
the splits (the DVC prepare stage's output), train a model and score it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ..config import ComputeParams, DataConfig
from ..models.base import ModelSpec, TrainResult

if TYPE_CHECKING:
    import pandas as pd

    from ..report import Scored

F = TypeVar("F")  # the backend's frame type, e.g. a pandas DataFrame
SAMPLE_ROWS = 100  # training rows that give a model its signature and input example


@dataclass(frozen=True)
class Splits(Generic[F]):
    train: F
    valid: F
    test: F


class Backend(ABC, Generic[F]):
    """One compute backend (`compute.kind` = `name`, parameters `params`: conf/compute/)."""

    name: ClassVar[str]
    params: ClassVar[type[ComputeParams]]

    def __init__(self, data: DataConfig, seed: int, settings: ComputeParams) -> None:
        self.data = data
        self.seed = seed
        self.settings = settings

    def session(self) -> AbstractContextManager[object]:
        """What the job computes in (a cluster connection); default: this process."""
        return nullcontext()

    @abstractmethod
    def load_splits(self) -> Splits[F]:
        """Read the raw data, check its schema, split it (seeded)."""

    @abstractmethod
    def write_splits(self, splits: Splits[F]) -> None:
        """Write the splits to `data.processed_dir`, replacing what was there."""

    @abstractmethod
    def read_splits(self) -> Splits[F]:
        """Read the splits `write_splits` wrote, re-checking their schema."""

    @abstractmethod
    def train(self, spec: ModelSpec[Any], params: Any, splits: Splits[F]) -> TrainResult:
        """Fit `spec`'s model on the train split (valid: early stopping, history)."""

    @abstractmethod
    def predict(self, spec: ModelSpec[Any], model: Any, frame: F) -> Scored:
        """The labels of `frame` and `model`'s probability of class 1 for each row."""

    @abstractmethod
    def describe(self, frame: F, rows: int) -> tuple[pd.DataFrame, int]:
        """The first `rows` rows (pandas) and the frame's true row count."""

    @abstractmethod
    def reference(self, frame: F, rows: int) -> pd.DataFrame:
        """A seeded uniform sample of at most `rows` rows (pandas): what scoring batches are
        monitored against (`mlrig.monitoring.profile`)."""

    def sample(self, splits: Splits[F]) -> pd.DataFrame:
        """A few training rows' features: the model's signature and input example."""
        head, _ = self.describe(splits.train, SAMPLE_ROWS)
        return head[self.data.features]
