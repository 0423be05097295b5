"""How each logging call reaches the tracking server: batched, retried where concurrent runs
collide, and classified as "the server did not answer" (spool) or a real error (raise)."""

from __future__ import annotations

import http.client
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
import requests
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelInput, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

log = logging.getLogger(__name__)

PARAM_BATCH = 100  # MLflow's limit of params per log_batch request
DATASET_ATTEMPTS = 3
# The store inserts a new dataset after checking it is absent, so concurrent runs logging the
# same dataset can collide on its key; the failed call is rolled back and a retry links the
# dataset the other run created.
DATASET_KEY_CONFLICT = re.compile(r"unique constraint|UniqueViolation|IntegrityError", re.I)


LOST = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    http.client.HTTPException,  # e.g. IncompleteRead: the server died mid-answer
    ConnectionError,
)


def unreachable(error: BaseException | None) -> bool:
    """True when `error`, or an error it was raised from, means the server did not answer
    (after MLflow's own retries): MLflow sometimes rewords a lost connection."""
    while error is not None:
        if isinstance(error, LOST):
            return True
        if isinstance(error, MlflowException) and "failed with exception" in error.message:
            return True
        error = error.__cause__ or error.__context__
    return False


@contextmanager
def no_retries() -> Iterator[None]:
    """MLflow's HTTP calls without retries (the server is known to be gone)."""
    previous = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        else:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = previous


def end_active_run(status: str) -> None:
    """End the active run; mlflow.end_run pops it before it calls the server, so an
    unreachable server still leaves this process without an active run."""
    try:
        mlflow.end_run(status)
    except Exception as error:
        if not unreachable(error):
            raise


def deliver_tags(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def deliver_params(client: MlflowClient, run_id: str, flat: dict[str, str]) -> None:
    """Log params in batches of 100, skipping those already on the run.

    `mlflow run` logs its -P parameters itself; MLflow refuses to change a logged value.
    """
    existing = client.get_run(run_id).data.params
    params = [Param(k, v[:6000]) for k, v in flat.items() if k not in existing]
    for start in range(0, len(params), PARAM_BATCH):
        client.log_batch(run_id, params=params[start : start + PARAM_BATCH])


def deliver_metrics(client: MlflowClient, run_id: str, metrics: list[Metric]) -> None:
    """One log_batch call (the client sends 1000 points per request; the server skips exact
    duplicates, so a replayed batch that had arrived adds nothing)."""
    client.log_batch(run_id, metrics=metrics)


def deliver_dataset(
    client: MlflowClient, run_id: str, dataset: Dataset, context: str, model_id: str | None = None
) -> None:
    """The dataset as an input of the run (and `model_id`, the logged model it fed, too)."""
    inputs = [DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])]
    models = [LoggedModelInput(model_id)] if model_id else None
    for attempt in range(1, DATASET_ATTEMPTS + 1):
        try:
            client.log_inputs(run_id, datasets=inputs, models=models)
            return
        except MlflowException as error:
            if attempt == DATASET_ATTEMPTS or not DATASET_KEY_CONFLICT.search(error.message):
                raise
            log.info("dataset %s was created concurrently; linking it", dataset.name)
            time.sleep(0.2 * attempt)


def history_points(history: dict[str, list[float]]) -> list[Metric]:
    """Per-iteration values as metric points, step = iteration."""
    now = int(time.time() * 1000)
    return [
        Metric(key=name, value=value, timestamp=now, step=step)
        for name, values in history.items()
        for step, value in enumerate(values)
    ]


def metric_points(values: dict[str, float]) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(key=k, value=float(v), timestamp=now, step=0) for k, v in values.items()]
