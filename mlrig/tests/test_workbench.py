"""What a notebook reaches for (`mlrig.connect`, `last_run`, `load_model`,
`pipeline_config`): the store the commands use and what they wrote there, from any folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import RAW, with_root
from mlflow import MlflowClient

import mlrig
from mlrig.registry import RegistryError


@pytest.fixture
def elsewhere(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> mlrig.Project:
    """The project rooted at the workspace, seen from a notebook's folder inside it."""
    (workspace / "notebooks").mkdir()
    monkeypatch.chdir(workspace / "notebooks")
    return with_root(workspace)


def test_a_notebook_reads_the_run_and_models_the_commands_wrote(
    trained: str, elsewhere: mlrig.Project, workspace: Path
) -> None:
    cfg = mlrig.pipeline_config(elsewhere)
    assert mlrig.connect(elsewhere) == f"sqlite:///{workspace / 'mlflow.db'}"
    run = mlrig.last_run(elsewhere)
    version = MlflowClient().get_model_version(cfg.registry.model_name, trained)
    assert run.info.run_id == version.run_id and cfg.objective.metric in run.data.metrics

    features = pd.read_csv(workspace / RAW)[cfg.data.features]
    challenger = mlrig.load_model(elsewhere, cfg.registry.alias)
    assert challenger.predict_proba(features).shape == (len(features), 2)
    with pytest.raises(
        RegistryError, match=f"no version of .* has the alias @{cfg.registry.champion_alias}"
    ):
        mlrig.load_model(elsewhere)  # nothing promoted yet
    MlflowClient().set_registered_model_alias(
        cfg.registry.model_name, cfg.registry.champion_alias, trained
    )
    champion = mlrig.load_model(elsewhere)
    assert np.array_equal(champion.predict_proba(features), challenger.predict_proba(features))
    assert np.array_equal(mlrig.load_model(elsewhere, trained).predict(features),
                          challenger.predict(features))  # fmt: skip


def test_the_newest_training_run_is_not_a_scoring_run_or_a_failure(
    trained: str, elsewhere: mlrig.Project
) -> None:
    cfg = mlrig.pipeline_config(elsewhere)
    trained_run = mlrig.last_run(elsewhere).info.run_id
    client = MlflowClient()
    experiment = client.get_experiment_by_name(cfg.tracking.experiment_name).experiment_id
    failed = client.create_run(experiment)
    client.log_metric(failed.info.run_id, cfg.objective.metric, 0.99)
    client.set_terminated(failed.info.run_id, "FAILED")
    scoring = client.create_run(experiment, tags={"run.kind": "inference"})
    client.log_metric(scoring.info.run_id, "rows", 10)
    client.set_terminated(scoring.info.run_id)
    assert mlrig.last_run(elsewhere).info.run_id == trained_run


def test_an_empty_store_says_how_to_make_a_run(elsewhere: mlrig.Project) -> None:
    with pytest.raises(
        mlrig.ProjectError, match=r"no finished training run in sqlite:///.*`make run`"
    ):
        mlrig.last_run(elsewhere)
