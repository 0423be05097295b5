"""Serving: batch predictions with a registered model, and its Docker build context."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .data import read_table
from .errors import ProjectError
from .models import registered
from .models.base import ModelRefused
from .processes import group_options, stop_group
from .registry import validated

if TYPE_CHECKING:
    from .project import Project
    from .tracking.store import Tracking


class InputError(ProjectError):
    """The input does not match the model's signature; says which columns."""


def predict_csv(
    project: Project,
    tracking: Tracking,
    model_uri: str,
    source: str | Path,
    destination: str | Path,
) -> int:
    """Score a CSV with a registered model (e.g. models:/name@champion); return the rows.

    The model is loaded as untrusted input (never by a loader its files name). Columns the
    signature does not know (an id, the label) are carried through unscored.
    """

    loaded = registered.load(project, model_uri, tracking.uri)
    frame = read_table(source)
    required = loaded.inputs if loaded.inputs is not None else list(frame.columns)
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise InputError(
            f"{source} lacks columns the model signature of {model_uri} requires: {missing}"
        )
    features = frame[required]
    scored = frame.assign(
        prediction=loaded.model.predict(features),
        probability=loaded.spec.scores(loaded.model, features),
    )
    Path(destination).parent.mkdir(parents=True, exist_ok=True)
    scored.to_csv(destination, index=False)
    return len(scored)


def image_ref(repository: str, name: str, version: str) -> str:
    """The image reference for a model version, lowercase as OCI requires.

    e.g. ghcr.io/Org/Repo + my-model v3 -> ghcr.io/org/repo/my-model:v3
    """
    return f"{repository.rstrip('/')}/{name}:v{version}".lower()


def dockerfile(
    project: Project, tracking: Tracking, name: str, version: str, output: str | Path
) -> Path:
    """`mlflow models generate-dockerfile`: a build context serving version `version` of
    `name` on :8080, built from exactly the files `promote` validated -- their digest must be
    the one it recorded on the promotion lock (`registry.validated`) -- after the
    untrusted-input checks (the flavor, its serving section, the files, the pinned
    environment); its MLmodel is rewritten from the checked data. The model's folder is
    `<output>/model_dir/model`: `mlflow models serve -m` that folder serves the same files."""
    uri = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory(prefix="serving-") as scratch:
        folder = Path(scratch) / "model"  # the image's model_dir/model
        folder.mkdir()
        checked = registered.fetch(project, uri, tracking.uri, folder)
        recorded = validated(tracking.client, name, version)
        if recorded is None:
            raise ModelRefused(
                f"{uri} has not passed the validation gate under `promote` (or was rolled "
                "back): only what it validated is served"
            )
        if recorded != checked.digest:
            raise ModelRefused(
                f"{uri}: its files (digest {checked.digest[:12]}) are not the ones `promote` "
                f"validated (digest {recorded[:12]})"
            )
        (folder / "MLmodel").write_text(yaml.safe_dump(served(checked)))
        (folder / registered.DOWNLOADED).unlink(missing_ok=True)  # the download's, not the model's
        generated = subprocess.run(
            [sys.executable, "-m", "mlflow", "models", "generate-dockerfile",
             "--model-uri", str(folder), "--output-directory", str(output),
             "--env-manager", "local"],
            env={**os.environ, "MLFLOW_TRACKING_URI": tracking.uri},
            check=False,
        )  # fmt: skip
        if generated.returncode:
            raise ProjectError(
                f"mlflow models generate-dockerfile failed (exit {generated.returncode}): its "
                f"output above says why; nothing usable is in {output}"
            )
    return Path(output) / "Dockerfile"


def served(checked: registered.Registered) -> dict[str, Any]:
    """The MLmodel a serving image gets: the checked flavor and the python_function section
    MLflow writes for it, set to answer probabilities (`ModelSpec.answering_probabilities`),
    the signature and the input example; nothing else the file held."""
    mlmodel = checked.mlmodel
    flavors = mlmodel["flavors"]
    native, pyfunc = checked.spec.answering_probabilities(
        flavors[checked.spec.flavor],
        checked.spec.serving(flavors[checked.spec.flavor])
        | {"python_version": flavors[registered.PYFUNC]["python_version"]},
    )
    kept = {key: mlmodel[key] for key in ("signature", "mlflow_version") if key in mlmodel}
    example = mlmodel.get("saved_input_example_info")
    if isinstance(example, dict):
        paths = {example.get("artifact_path"), example.get("serving_input_path")}
        if paths <= {*registered.EXAMPLES, None}:  # its files are the checked examples
            kept["saved_input_example_info"] = example
    return {"flavors": {registered.PYFUNC: pyfunc, checked.spec.flavor: native}, **kept}


@contextmanager
def _serving(folder: Path, timeout_s: float) -> Iterator[str]:
    """`mlflow models serve` of `folder` on a free loopback port until it answers /ping; its
    URL; stopped (its process group) on the way out."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(folder),
               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    bin_first = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    server = subprocess.Popen(command, env={**os.environ, "PATH": bin_first}, **group_options())
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(f"{url}/ping"):
            if server.poll() is not None:
                raise ProjectError(f"mlflow models serve exited ({server.returncode}): see above")
            if time.monotonic() > deadline:
                raise ProjectError(f"the served model did not answer within {timeout_s:g}s")
            time.sleep(0.5)
        yield url
    finally:
        stop_group(server, timeout_s=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback)
            return True
    except OSError:
        return False


def check_answers(folder: Path, timeout_s: float = 120) -> str:
    """Serve the model folder `folder` (a serving image's model_dir/model) on loopback, send
    it its own serving input example, and require one probability per row: a number in
    [0, 1], or each class's, summing to 1."""
    example = registered.inside(folder, "serving_input_example.json").read_bytes()
    rows = len(next(iter(json.loads(example).values()))["data"])
    with _serving(folder, timeout_s) as url:
        request = urllib.request.Request(  # noqa: S310 (loopback)
            f"{url}/invocations", data=example, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answer = json.loads(response.read())
        except (OSError, ValueError) as error:
            raise ProjectError(f"the served model failed to answer its example: {error}") from error
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != rows:
        raise ProjectError(f"the served model answered {str(answer)[:200]}, not {rows} rows")
    for row in predictions:
        if not _probabilities(row):
            raise ProjectError(f"the served model answered {row!r}: not a probability")
    return f"The served model answers probabilities: {predictions[0]!r} for the first of {rows}"


def _probabilities(row: Any) -> bool:
    """Floats in [0, 1] (a label answers an integer), summing to 1 when there are several."""
    values = row if isinstance(row, list) else [row]
    in_range = all(isinstance(v, float) and 0 <= v <= 1 for v in values)
    return in_range and (len(values) == 1 or abs(sum(values) - 1) < 1e-6)
