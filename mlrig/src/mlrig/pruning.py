"""Pruning a tuning trial by its model's validation metric, round by round: `tune` makes a
trial active while its job runs; a model kind that trains in rounds (XGBoost's) reports each
round's validation metrics, and the trial stops as soon as the study's pruner says so
(`optuna.TrialPruned`, which `tune` records on the trial's run)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

PRUNED_TAG = "optuna.trial_state"  # PRUNED on the run of a pruned trial
_active: list[tuple[optuna.Trial, str]] = []  # the trial whose job runs, its round metric


@contextmanager
def active(trial: optuna.Trial, metric: str) -> Iterator[None]:
    """While inside, rounds report `metric` (a validation metric's name, e.g. auc) to `trial`."""
    _active.append((trial, metric))
    try:
        yield
    finally:
        _active.remove((trial, metric))


def report(done: int, validation: dict[str, float]) -> None:
    """Round `done` (1-based) of a training: report the active trial's metric; raise
    `optuna.TrialPruned` when the pruner stops it. Nothing when no trial is active."""
    if not _active:
        return
    trial, metric = _active[-1]
    if metric not in validation:
        return
    trial.report(validation[metric], done)
    if trial.should_prune():
        import optuna

        raise optuna.TrialPruned(f"pruned at round {done}: {metric}={validation[metric]:.4f}")
