"""Shared fixtures: a throw-away workspace with the raw data and its own tracking store.

Servers, stores and the team topology for tests come from `mlrig.testing`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlrig.testing import forget_connection, new_store

from {{ cookiecutter.package_name }}.project import PROJECT

RAW = "data/raw/breast_cancer.csv"
{%- if cookiecutter.model_library == "xgboost" %}
# A quick model, and the per-iteration points it logs.
FAST = ["model.n_estimators=25", "model.early_stopping_rounds=0"]
FAST_ROUNDS: int | None = 25
{%- else %}
# A quick model (logistic regression logs no per-iteration points).
FAST: list[str] = []
FAST_ROUNDS: int | None = None
{%- endif %}


@pytest.fixture(autouse=True)
def _isolated_mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Telemetry off, no inherited run; each test's tracking URI comes from its own
    environment (a connection sets MLflow's process-wide ones)."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    yield
    forget_connection()


def produce_raw(folder: Path) -> None:
    """The tracked raw data in `folder`, as `make data` writes it where DVC cannot pull it."""
    data = PROJECT.load_params(PROJECT.root / "params.yaml").data
    PROJECT.producer(data.producer).produce(folder / RAW, data.producer, data)
    shutil.copy(PROJECT.root / f"{RAW}.dvc", folder / f"{RAW}.dvc")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cwd holding params.yaml, the raw data and its .dvc file; tracking into a new store
    there, its experiment 0 under `tracking.artifact_dir` beside it (the first connection
    makes it the project's, as `make setup` does)."""
    produce_raw(tmp_path)
    shutil.copy(PROJECT.root / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    artifacts = (tmp_path / PROJECT.load_params().tracking.artifact_dir).as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", new_store(tmp_path / "mlflow.db", artifacts))
    return tmp_path
