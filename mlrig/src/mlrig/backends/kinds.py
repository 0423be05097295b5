"""What configuring a backend needs, without pandas, NumPy or Dask: each compute kind's
parameters and which model kinds it can train. The backends themselves (`local.py`,
`dask.py`) are imported when a job runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..config import ComputeParams, ConfigError, check

if TYPE_CHECKING:
    import dask.array as da
    import dask.dataframe as dd

    from ..models.base import ModelSpec, TrainResult


@dataclass
class LocalParams(ComputeParams):
    """No settings: the job computes in its own process."""


@dataclass
class DaskParams(ComputeParams):
    scheduler_address: str | None = None  # None: a LocalCluster for the job
    n_workers: int = 1
    threads_per_worker: int = 2
    memory_limit: str = "auto"
    partition_size: str = "64MiB"  # CSV blocks

    def __post_init__(self) -> None:
        check(self.n_workers >= 1, "compute.n_workers must be >= 1")
        check(self.threads_per_worker >= 1, "compute.threads_per_worker must be >= 1")


@runtime_checkable
class DaskTrainable(Protocol):
    """A model spec that trains and scores on Dask frames."""

    def fit_dask(
        self,
        params: Any,
        seed: int,
        train: dd.DataFrame,
        valid: dd.DataFrame,
        features: list[str],
        target: str,
    ) -> TrainResult: ...

    def scores_dask(self, model: Any, features: dd.DataFrame) -> da.Array: ...


def check_trainable(kind: str, spec: ModelSpec[Any]) -> None:
    """Refuse a model kind the compute kind cannot train."""
    if kind == "dask" and not isinstance(spec, DaskTrainable):
        raise ConfigError(
            f"compute=dask cannot train model.kind={spec.name}: use compute=local, or a "
            "model with Dask training (model=xgboost)"
        )


PARAMS: dict[str, type[ComputeParams]] = {"local": LocalParams, "dask": DaskParams}
