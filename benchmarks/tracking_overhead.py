"""Tracking overhead of the project's train step vs a bare XGBoost fit vs mlflow.xgboost.autolog.

Same synthetic data, parameters and threads for all three; at 100k and 1M rows; against the
embedded sqlite store and a loopback `mlflow server`. Each alternative runs RUNS times,
interleaved, and the median is compared. Run from a baked project's root (see `make bench`);
ROWS (comma-separated) and RUNS can be set in the environment.

- bare:     XGBClassifier(...).fit(...) + save_model (what a script without tracking does)
- project:  one tracked run: tags, params, datasets, per-iteration history, model, as the DVC
            train stage and the Hydra entry do (mlrig's steps.fit_and_log)
- autolog:  mlflow.xgboost.autolog() around the same fit
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import mlflow
from mlrig.data import fetch
from mlrig.tracking.run import start_run
from mlrig.tracking.store import Tracking
from xgboost import XGBClassifier

from common import project as baked_project
from mlrig import steps

ROWS = tuple(int(n) for n in os.environ.get("ROWS", "100000,1000000").split(","))
RUNS = int(os.environ.get("RUNS", 3))


def loopback_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = 5000 + os.getpid() % 1000
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
    ]  # fmt: skip
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    server = subprocess.Popen(
        command,
        env={**os.environ, "PATH": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            return server, uri
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("mlflow server did not start")


def main() -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    project = baked_project()
    work = Path(tempfile.mkdtemp())
    os.chdir(work)
    server, server_uri = loopback_server(work)
    stores = {"embedded sqlite": f"sqlite:///{work / 'mlflow.db'}", "loopback server": server_uri}
    try:
        for rows in ROWS:
            compare(project, rows, stores, work)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()


def compare(project: object, rows: int, stores: dict[str, str], work: Path) -> None:
    """The three alternatives on `rows` rows, against each store."""
    cfg = project.composed(["data=synthetic", f"data.producer.n_rows={rows}"])
    fetch(project, cfg.data)
    spec, backend = steps.resolve(project, cfg)
    splits = backend.load_splits()
    features, target = cfg.data.features, cfg.data.target
    x_train, y_train = splits.train[features], splits.train[target]
    evals = [(x_train, y_train), (splits.valid[features], splits.valid[target])]
    params = spec.arguments(cfg.model, cfg.seed)

    def fit() -> XGBClassifier:
        return XGBClassifier(**params).fit(x_train, y_train, eval_set=evals, verbose=False)

    def bare() -> None:
        fit().save_model(work / "bare.ubj")

    def tracked() -> None:
        with start_run(project, Tracking.connect(cfg, project.root), spec.name) as logger:
            steps.fit_and_log(cfg, backend, spec, splits, logger)

    def autolog() -> None:
        mlflow.xgboost.autolog(log_input_examples=True, log_model_signatures=True)
        try:
            with mlflow.start_run(experiment_id=mlflow.set_experiment("autolog").experiment_id):
                fit()
        finally:
            mlflow.xgboost.autolog(disable=True)

    for store, uri in stores.items():
        os.environ["MLFLOW_TRACKING_URI"] = uri
        mlflow.set_tracking_uri(uri)
        report(rows, store, {"bare": bare, "project": tracked, "autolog": autolog})


def report(rows: int, store: str, variants: dict[str, Callable[[], None]]) -> None:
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(RUNS):
        for name, variant in variants.items():
            started = time.perf_counter()
            variant()
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in times.items()}
    bare = median["bare"]
    shown = ", ".join(
        f"{name} {value:.2f} s ({value / bare:.3f}x)" for name, value in median.items()
    )
    print(f"{rows:>9,} rows, {store}: {shown}", flush=True)


if __name__ == "__main__":
    main()
