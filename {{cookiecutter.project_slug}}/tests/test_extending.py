"""The README's recipe for a new model kind, followed in a copy of the project: one file in
models/, one entry in its table, one conf/model/*.yaml -- then it trains, logs, registers and
keeps the import layers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import produce_raw
from mlflow import MlflowClient

from {{ cookiecutter.package_name }}.project import PROJECT

PACKAGE = "{{ cookiecutter.package_name }}"
PROJECT_ROOT = PROJECT.root

SPEC = '''"""Logistic regression fitted by stochastic gradient descent, saved with skops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlrig import ModelParams, SklearnModel, check


@dataclass
class SGDParams(ModelParams):
    alpha: float
    max_iter: int

    def __post_init__(self) -> None:
        check(self.alpha > 0, "model.alpha must be > 0")


class SGD(SklearnModel[SGDParams]):
    name = "sgd"
    params = SGDParams

    def estimator(self, params: SGDParams, seed: int) -> Any:
        from sklearn.linear_model import SGDClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        classifier = SGDClassifier(
            loss="log_loss", alpha=params.alpha, max_iter=params.max_iter, random_state=seed
        )
        return make_pipeline(StandardScaler(), classifier)

    def importance(self, model: Any) -> Any:
        import numpy as np

        return np.abs(np.ravel(model.steps[-1][1].coef_))


SPEC = SGD()
'''
CONF = "# scikit-learn SGDClassifier with log loss.\nkind: sgd\nalpha: 0.0001\nmax_iter: 1000\n"


def add_model_kind(project: Path) -> None:
    """The recipe: the spec's file, its table entry, its conf group file."""
    models = project / "src" / PACKAGE / "models"
    (models / "sgd.py").write_text(SPEC)
    table = (models / "__init__.py").read_text()
    table = table.replace(
        "from .logistic_regression import SPEC as LOGISTIC_REGRESSION\n",
        "from .logistic_regression import SPEC as LOGISTIC_REGRESSION\n"
        "from .sgd import SPEC as SGD\n",
    )
    entry = "    LOGISTIC_REGRESSION.name: LOGISTIC_REGRESSION,\n"
    table = table.replace(entry, f"{entry}    SGD.name: SGD,\n")
    assert "SGD.name: SGD" in table
    (models / "__init__.py").write_text(table)
    (project / "conf" / "model" / "sgd.yaml").write_text(CONF)


def run(project: Path, *command: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}  # the copy shadows the install
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def test_a_third_model_kind_from_the_recipe(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("src", "conf"):
        shutil.copytree(PROJECT_ROOT / name, project / name, ignore=shutil.ignore_patterns("*.pyc"))
    for name in ("params.yaml", "pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    produce_raw(project)
    add_model_kind(project)

    out = run(project, sys.executable, "-m", f"{PACKAGE}.cli", "train", "model=sgd")
    assert "(alias @challenger)" in out
    run(project, str(Path(sys.executable).with_name("lint-imports")), "--no-logo")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    client = MlflowClient()
    (trained,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert trained.data.tags["model.kind"] == "sgd"
    assert trained.info.run_name.endswith("-sgd-1")
    assert trained.data.params["model.alpha"] == "0.0001"
    name = yaml.safe_load((project / "params.yaml").read_text())["registry"]["model_name"]
    assert client.get_model_version_by_alias(name, "challenger").run_id == trained.info.run_id
