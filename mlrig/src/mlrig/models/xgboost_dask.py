"""XGBoost on a Dask cluster, streamed: each worker reads its share of the partitions one at a
time into a quantile matrix, so the raw rows are neither persisted nor all held at once, and
the workers train together in XGBoost's collective. Rank 0 sends back the booster and the
per-iteration history; the other ranks hold the same model."""

from __future__ import annotations

from dataclasses import dataclass
from threading import Thread
from typing import TYPE_CHECKING, Any

import xgboost
from distributed import MultiLock, get_worker, wait
from distributed.comm import get_address_host
from xgboost.tracker import RabitTracker

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, Future, Scheduler

JOIN_TIMEOUT = 600  # seconds for every rank to join the collective, and to leave it
WATCH_INTERVAL = 2  # seconds between checks that the ranks' workers are still there


@dataclass(frozen=True)
class Share:
    """One worker's rank and its partitions of the train and valid splits (still lazy)."""

    address: str
    rank: int
    train: list[dd.DataFrame]
    valid: list[dd.DataFrame]


@dataclass(frozen=True)
class Trained:
    booster: bytes  # UBJSON
    history: dict[str, dict[str, list[float]]]  # eval name -> metric -> one value per round
    best_iteration: int | None  # None without early stopping


class Partitions(xgboost.DataIter):
    """A split's partitions as a quantile matrix's batches: each computed in this thread when
    the matrix asks for it, and released once the matrix has taken it in."""

    def __init__(self, parts: list[dd.DataFrame], features: list[str], target: str) -> None:
        self.parts, self.features, self.target = parts, features, target
        self.index = 0
        super().__init__()

    def next(self, input_data: Any) -> bool:
        if self.index == len(self.parts):
            return False
        part: pd.DataFrame = self.parts[self.index].compute(scheduler="sync")
        self.index += 1
        input_data(data=part[self.features], label=part[self.target])
        return True

    def reset(self) -> None:
        self.index = 0


def fit(
    client: Client,
    settings: dict[str, Any],
    rounds: int,
    early_stopping: int | None,
    splits: tuple[dd.DataFrame, dd.DataFrame],
    features: list[str],
    target: str,
    evals: tuple[str, str],
) -> Trained:
    """Train `rounds` rounds of the booster `settings` on the cluster's workers, evaluating on
    the train and valid splits after each, named `evals` in the history (`early_stopping`:
    rounds without improvement).
    Metrics are XGBoost's distributed ones: AUC is combined from each worker's, so it can
    differ slightly with the number of workers."""
    shares = deal(sorted(client.nthreads()), *(split[[*features, target]] for split in splits))
    workers = [share.address for share in shares]
    # One job's ranks at a time on these workers: each rank holds a worker thread while it
    # waits for its peers, so the ranks of two jobs could otherwise wait on each other.
    with MultiLock(names=workers, client=client):
        collective = client.run_on_scheduler(start_tracker, len(shares))
        arguments = (settings, rounds, early_stopping, collective, features, target, evals)
        futures = [
            client.submit(
                train_share,
                share,
                *arguments,
                workers=[share.address],
                allow_other_workers=False,
                pure=False,
            )
            for share in shares
        ]
        first, *_ = gathered(client, futures, workers)
    return first


def gathered(client: Client, futures: list[Future], workers: list[str]) -> list[Any]:
    """The ranks' results, or the first rank's error. A rank's task is pinned to its worker,
    so should the worker die it would wait for ever: the job fails once one is gone."""
    pending = futures
    while pending and not any(future.status == "error" for future in futures):
        try:
            wait(pending, timeout=WATCH_INTERVAL, return_when="FIRST_COMPLETED")
        except TimeoutError:
            gone = sorted(set(workers) - set(client.nthreads()))
            if gone:
                client.cancel(futures)
                raise RuntimeError(
                    f"Dask worker {', '.join(gone)} left the cluster while training (out of "
                    "memory? see compute.memory_limit); nothing was trained: run the job again"
                ) from None
        pending = [future for future in futures if not future.done()]
    return client.gather(futures)


def deal(workers: list[str], train: dd.DataFrame, valid: dd.DataFrame) -> list[Share]:
    """Partitions dealt round-robin; a worker needs a partition of each split, so at most as
    many workers are used as the split with fewer partitions has."""
    parts = [split.optimize() for split in (train, valid)]
    lazy = [[split.partitions[i] for i in range(split.npartitions)] for split in parts]
    used = workers[: min(len(workers), *(len(split) for split in lazy))]
    return [
        Share(address, rank, lazy[0][rank :: len(used)], lazy[1][rank :: len(used)])
        for rank, address in enumerate(used)
    ]


def start_tracker(n_workers: int, dask_scheduler: Scheduler) -> dict[str, Any]:
    """On the scheduler, as xgboost.dask does: the tracker the workers' collective meets at,
    on the scheduler's own address (the one the workers reach), waited on by a daemon thread;
    returns what each worker needs to join it."""
    host = get_address_host(dask_scheduler.address)
    tracker = RabitTracker(n_workers=n_workers, host_ip=host, sortby="task", timeout=JOIN_TIMEOUT)
    tracker.start()
    Thread(target=tracker.wait_for, daemon=True).start()
    return tracker.worker_args()


def train_share(
    share: Share,
    settings: dict[str, Any],
    rounds: int,
    early_stopping: int | None,
    collective: dict[str, Any],
    features: list[str],
    target: str,
    evals: tuple[str, str],
) -> Trained | None:
    """On a worker: its quantile matrices, then the collective's training. `n_jobs` unset or
    below 1 means the worker's threads. Dask starts workers with OMP_NUM_THREADS=1, which caps
    XGBoost's `nthread` parameter; its global `nthread` lifts the cap, as xgboost.dask does."""
    asked = settings.get("n_jobs") or 0
    threads = asked if asked >= 1 else get_worker().state.nthreads
    history: dict[str, dict[str, list[float]]] = {}
    with (
        xgboost.config_context(nthread=threads),
        xgboost.collective.CommunicatorContext(**collective, dmlc_task_id=f"{share.rank:06d}"),
    ):
        train = xgboost.QuantileDMatrix(Partitions(share.train, features, target), nthread=threads)
        valid = xgboost.QuantileDMatrix(
            Partitions(share.valid, features, target), ref=train, nthread=threads
        )
        booster = xgboost.train(
            settings | {"n_jobs": threads},
            train,
            rounds,
            evals=[(train, evals[0]), (valid, evals[1])],
            early_stopping_rounds=early_stopping,
            evals_result=history,
            verbose_eval=False,
        )
    if share.rank:
        return None
    best = booster.best_iteration if early_stopping else None
    return Trained(bytes(booster.save_raw("ubj")), history, best)
