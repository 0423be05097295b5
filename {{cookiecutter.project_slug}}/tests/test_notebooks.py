"""The starter notebook runs top to bottom in the venv's kernel (nbclient) on a trained
project: the data through DVC, the newest run's metrics, the champion's scores."""

from __future__ import annotations

from pathlib import Path

import mlrig
import nbformat
import pandas as pd
import pytest
from conftest import FAST, RAW
from mlflow import MlflowClient
from nbclient import NotebookClient

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.project import PROJECT

NOTEBOOKS = PROJECT.root / "notebooks"


def run_notebook(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
    client.execute()
    return notebook


def text(cell: nbformat.NotebookNode) -> str:
    """What a code cell printed (to stdout) and its value as text."""
    printed = "".join(out.text for out in cell.outputs if out.get("name") == "stdout")
    values = [out.data["text/plain"] for out in cell.outputs if "text/plain" in out.get("data", {})]
    return "\n".join([printed, *values])


def test_the_notebooks_are_committed_without_outputs() -> None:
    """What the nbstripout hook keeps so: no outputs, no execution counts."""
    for path in NOTEBOOKS.glob("*.ipynb"):
        code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert [c for c in code if c.outputs or c.execution_count] == [], path


def test_the_starter_notebook_runs_on_a_trained_project(workspace: Path) -> None:
    if not (PROJECT.root / RAW).exists():  # what `make data` writes where DVC cannot pull it
        data = PROJECT.load_params(PROJECT.root / "params.yaml").data
        PROJECT.producer(data.producer).produce(PROJECT.root / RAW, data.producer, data)
    assert main(["train", *FAST]) == 0
    cfg = PROJECT.load_params()
    MlflowClient().set_registered_model_alias(
        cfg.registry.model_name, cfg.registry.champion_alias, "1"
    )
    cells = [c for c in run_notebook(NOTEBOOKS / "start.ipynb").cells if c.cell_type == "code"]
    assert f"tracking: sqlite:///{workspace / 'mlflow.db'}" in text(cells[0])
    rows = len(pd.read_csv(PROJECT.root / RAW))
    assert f"{rows} rows, {len(cfg.data.features)} features" in text(cells[1])
    assert f"{cfg.project}-{cfg.model.kind}-1 " in text(cells[2])
    assert "test_auc" in text(cells[2])
    kind = type(mlrig.load_model(PROJECT)).__name__  # the native model: XGBClassifier, ...
    assert f"@champion ({kind}) scored {rows} rows" in text(cells[3])
    assert "Name: P(1)" in text(cells[3])


def test_the_notebook_says_what_is_missing(workspace: Path) -> None:
    """A store with no training run: the cell fails with the library's message, not a
    traceback into MLflow."""
    notebook = nbformat.read(NOTEBOOKS / "start.ipynb", as_version=4)
    notebook.cells = [c for c in notebook.cells if "last_run" in c.source or "import" in c.source]
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})  # fmt: skip
    with pytest.raises(Exception, match="no finished training run in sqlite:///"):
        client.execute()
