"""Per-iteration metrics to a loopback `mlflow server`: the project's one-batch logging vs one
`log_metric` call per point. Prints wall time and HTTP requests of each, side by side; the
batch's delivery just after the server started and once it has settled (median of
DELIVERIES); how long the training path waits when a job sends the batch in the background;
and the floor: the same points inserted by MLflow's sqlite store in this process, and the
client's own encoding of the requests.

Run with a baked project's interpreter, from its root (see `make bench`):
    .venv/bin/python ../../../benchmarks/per_iteration_metrics.py
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import requests

from common import project as baked_project

ROUNDS, METRICS = 500, 4
PER_CALL_SAMPLE = 200  # per-call points actually sent; the full cost is extrapolated
DELIVERIES = int(os.environ.get("DELIVERIES", "5"))
SETTLE_S = 30  # found by trying: the first batches after /health answers are slower


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def count_requests() -> list[int]:
    """Count every HTTP request the MLflow client sends."""
    counter = [0]
    send = requests.Session.send

    def counting(self, request, **kwargs):
        counter[0] += 1
        return send(self, request, **kwargs)

    requests.Session.send = counting
    return counter


def floor(metrics: list, work: Path) -> tuple[float, float]:
    """Median seconds (of DELIVERIES) that MLflow's sqlite store takes to insert `metrics` in
    this process, each time into a new run (no HTTP, no server running), and seconds the
    client takes to encode them as log_batch requests of 1000 points (JSON only)."""
    from mlflow.protos.service_pb2 import LogBatch
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.utils.proto_json_utils import message_to_json

    store = SqlAlchemyStore(f"sqlite:///{work}/floor.sqlite", (work / "floor").as_uri())
    experiment = store.create_experiment("floor")
    inserts = []
    for _ in range(DELIVERIES):
        run = store.create_run(experiment, "bench", int(time.time() * 1000), [], "floor").info
        started = time.perf_counter()
        for start in range(0, len(metrics), 1000):
            chunk = metrics[start : start + 1000]
            store.log_batch(run.run_id, metrics=chunk, params=[], tags=[])
        inserts.append(time.perf_counter() - started)
    started = time.perf_counter()
    for start in range(0, len(metrics), 1000):
        chunk = [m.to_proto() for m in metrics[start : start + 1000]]
        message_to_json(LogBatch(run_id=run.run_id, metrics=chunk))
    encoded = time.perf_counter() - started
    store.engine.dispose()
    return statistics.median(inserts), encoded


def main() -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    work = Path(tempfile.mkdtemp())
    port = free_port()
    bin_dir = Path(sys.executable).parent
    # MLflow's defaults, as the team server runs them (deploy/tracking-server): 4 workers and
    # the job runner; a sqlite store here (the team server's is PostgreSQL).
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{work}/db.sqlite",
         "--artifacts-destination", str(work / "artifacts")],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        uri = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        import mlflow
        from mlflow import MlflowClient
        from mlrig.tracking import delivery
        from mlrig.tracking.run import RunLogger
        from mlrig.tracking.store import Tracking

        mlflow.set_tracking_uri(uri)
        client = MlflowClient()
        experiment = client.create_experiment("bench")
        history = {
            f"iter_metric_{m}": [1.0 / (r + 1 + m) for r in range(ROUNDS)] for m in range(METRICS)
        }
        counter = count_requests()

        def deliver() -> float:
            run = client.create_run(experiment).info.run_id
            counter[0] = 0
            started = time.perf_counter()
            delivery.deliver_metrics(client, run, delivery.history_points(history))
            return time.perf_counter() - started

        first = deliver()
        batched_requests = counter[0]
        time.sleep(SETTLE_S)
        settled = [deliver() for _ in range(DELIVERIES)]
        points = len(delivery.history_points(history))

        run = client.create_run(experiment).info.run_id
        project = baked_project()
        cfg = project.load_params()
        tracking = Tracking(uri, False, cfg.tracking, cfg.project, work)
        logger = RunLogger(project, tracking, run, "bench", rename=lambda: "bench")
        started = time.perf_counter()
        logger.metrics_in_background(delivery.history_points(history))
        waited = time.perf_counter() - started
        logger.end("FINISHED")  # settles the background call
        delivered = time.perf_counter() - started
        assert len(client.get_metric_history(run, "iter_metric_0")) == ROUNDS

        run = client.create_run(experiment).info.run_id
        counter[0] = 0
        started = time.perf_counter()
        for step in range(PER_CALL_SAMPLE):
            client.log_metric(run, "iter_metric_0", 1.0 / (step + 1), step=step)
        per_point = (time.perf_counter() - started) / PER_CALL_SAMPLE
        per_call_requests = counter[0] / PER_CALL_SAMPLE
        per_call = per_point * points
    finally:
        os.killpg(server.pid, 15)
        server.wait()
    inserted, encoded = floor(delivery.history_points(history), work)
    shutil.rmtree(work, ignore_errors=True)
    batched = statistics.median(settled)
    print(f"{ROUNDS} rounds x {METRICS} metrics = {points} points to a loopback mlflow server")
    print(
        f"  project (one log_batch call), settled server: {batched:.3f} s median of "
        f"{DELIVERIES} (min {min(settled):.3f}, max {max(settled):.3f}), "
        f"{batched_requests} HTTP requests"
    )
    print(f"  the same, just after the server started:     {first:.3f} s")
    print(
        f"  log_metric per point:         {per_call:.1f} s ({per_point * 1000:.1f} ms/point, "
        f"measured on {PER_CALL_SAMPLE}), {per_call_requests * points:.0f} HTTP requests"
    )
    print(f"  ratio per-call / batched:     {per_call / batched:.0f}x")
    print(
        f"  project in the background:    the training path waits {waited * 1000:.1f} ms; "
        f"delivered after {delivered:.3f} s"
    )
    print(
        f"  floor: the sqlite store inserts them in {inserted:.3f} s in-process (median of "
        f"{DELIVERIES}); the client encodes the requests in {encoded:.3f} s"
    )


if __name__ == "__main__":
    main()
