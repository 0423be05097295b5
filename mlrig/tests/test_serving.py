"""Serving the champion: batch predictions, a real scoring server, the Docker build context."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import BOOSTED, GOOD, RAW, tracking, with_root

import mlrig
from mlrig import Project, ProjectError, promotion, serving
from mlrig.job import run_job
from mlrig.models.xgboost import MODEL_CLASS
from mlrig.testing import background, free_port
from mlrig.tracking.store import Tracking


@pytest.fixture
def champion(project: Project, trained: str) -> str:
    cfg = project.composed(GOOD)
    promotion.promote(project, tracking(cfg), cfg, cfg.registry.model_name, trained)
    return f"models:/{cfg.registry.model_name}@champion"


def predict(project: Project, uri: str, source: str, destination: str) -> int:
    return serving.predict_csv(project, tracking(), uri, source, destination)


def test_predict_scores_a_csv_with_the_champion(
    project: Project, champion: str, workspace: Path
) -> None:
    rows = predict(project, champion, RAW, "predictions/out.csv")
    scored = pd.read_csv("predictions/out.csv")
    assert rows == len(scored) == len(pd.read_csv(RAW))
    assert set(scored["prediction"]) <= {0, 1}
    assert scored["probability"].between(0, 1).all()
    assert (scored["prediction"] == scored["target"]).mean() > 0.8


def test_predict_names_missing_columns(project: Project, champion: str, workspace: Path) -> None:
    pd.read_csv(RAW).drop(columns=["f0", "f5"]).to_csv("bad.csv", index=False)
    with pytest.raises(serving.InputError, match=r"\['f0', 'f5'\]"):
        predict(project, champion, "bad.csv", "out.csv")


def test_mlflow_models_serve_answers(champion: str, workspace: Path) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", champion,
        "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    sample = pd.read_csv(RAW).drop(columns=["target"]).head(3)
    body = json.dumps({"dataframe_split": sample.to_dict(orient="split")}).encode()
    with background(command, f"http://127.0.0.1:{port}/ping", {}, workspace):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            predictions = json.loads(response.read())["predictions"]
    assert len(predictions) == 3 and set(predictions) <= {0, 1}


def test_dockerfile_build_context_for_the_champion(
    champion: str, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the embedded store, with no MLFLOW_TRACKING_URI: MLflow's subprocess that writes
    the context gets the URI from the connection."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    project = with_root(workspace)  # its embedded store: the workspace's
    store = Tracking.connect(project.load_params(), project.root)
    assert store.embedded
    name, _ = champion.removeprefix("models:/").split("@")
    version = store.client.get_model_version_by_alias(name, "champion").version
    dockerfile = serving.dockerfile(project, store, name, version, workspace / "build" / "serving")
    text = dockerfile.read_text()
    assert "model_dir" in text and "ENTRYPOINT" in text
    assert (dockerfile.parent / "model_dir").is_dir()


def test_dockerfile_command_publishes_the_image_reference(
    project: Project, champion: str, workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """What promote.yml's serving-image job runs: lowercase image ref as a step output."""
    outputs = workspace / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    args = ["dockerfile", "--version", "1", "--output", "ctx", "--image-repo", "ghcr.io/Org/Repo"]
    assert mlrig.main(project, args) == 0
    assert outputs.read_text() == "image=ghcr.io/org/repo/demo-model:v1\n"
    assert (workspace / "ctx" / "Dockerfile").exists()
    assert mlrig.main(project, ["predict", "--input", "missing.csv", "--output", "out.csv"]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_a_serving_image_model_answers_probabilities(project: Project, workspace: Path) -> None:
    """What promote.yml checks before it pushes an image: the build context's model, served,
    answers its example with probabilities -- P(1) for an XGBoost kind (its file read as a
    Booster), each class's for a scikit-learn kind (its predict_proba)."""
    assert mlrig.main(project, ["init-tracking"]) == 0
    contexts = []
    for overrides in (BOOSTED, GOOD):  # the better one second: it passes the gate
        cfg = project.composed(overrides)
        version = run_job(project, cfg).version
        promotion.promote(project, tracking(cfg), cfg, cfg.registry.model_name, version)
        built = serving.dockerfile(project, tracking(), "demo-model", version, Path(version))
        contexts.append(built.parent / "model_dir" / "model")
    boosted, linear = contexts
    assert "answers probabilities: 0." in serving.check_answers(boosted)
    assert "answers probabilities: [" in serving.check_answers(linear)

    labels_only = boosted / "MLmodel"  # the flavor as logged: the classifier answers labels
    labels_only.write_text(labels_only.read_text().replace("xgboost.core.Booster", MODEL_CLASS))
    with pytest.raises(ProjectError, match="not a probability"):
        serving.check_answers(boosted)
