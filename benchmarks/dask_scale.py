"""Scale: a tracked training job with compute=dask on synthetic data (20 float32 features) on
this machine's LocalCluster, side by side: the default cluster (one worker process, two
threads) at 10M rows and at 30M rows, and two one-thread workers at 10M rows. For each: the
data's in-memory size, the peak memory of the whole process tree (client, workers; sampled
every 0.25 s) and its ratio to the data, the process that held most at the peak, and the wall
time. Last, the floor: XGBoost alone in one process (no Dask, no MLflow), streaming as many
training and validation rows from the same files, with the same parameters and two threads.
Run from a baked project's root (see `make bench`); ROWS (comma-separated) replaces the
default's row counts.

`--against-local`: the default Dask job and the same job with compute=local (pandas and
XGBoost in the job's process), side by side at each of ROWS (default 1M, 3M, 10M): where Dask
pays in memory and what it costs in time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import pyarrow.parquet as pq
import yaml

from common import package as project_package
from common import project

AGAINST_LOCAL = sys.argv[1:2] == ["--against-local"]
DEFAULT_ROWS = "1000000,3000000,10000000" if AGAINST_LOCAL else "10000000,30000000"
ROWS = [int(n) for n in os.environ.get("ROWS", DEFAULT_ROWS).split(",")]
TWO_WORKERS = ["compute.n_workers=2", "compute.threads_per_worker=1"]
GIB = 1024**3
JOBS = {"dask": "default (1 worker x 2 threads)", "local": "compute=local (one process)"}


def overrides(rows: int, compute: str = "dask") -> list[str]:
    return [
        f"compute={compute}",
        "data=synthetic",
        f"data.producer.n_rows={rows}",
        "data.producer.partition_rows=1000000",
        "model.n_estimators=100",
        "model.early_stopping_rounds=0",
    ]


def peak_memory(root: psutil.Process, stop: threading.Event, peaks: dict[str, int]) -> None:
    """Largest sums of RSS and of PSS (shared pages split between processes) over the tree,
    and the PSS of the largest process at the PSS peak."""
    while not stop.is_set():
        rss = pss = largest = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                memory = process.memory_full_info()
            except psutil.Error:
                continue
            rss, pss, largest = rss + memory.rss, pss + memory.pss, max(largest, memory.pss)
        if pss > peaks["pss"]:
            peaks["largest"] = largest
        peaks["rss"], peaks["pss"] = max(peaks["rss"], rss), max(peaks["pss"], pss)
        stop.wait(0.25)


def sampled(command: list[str], **popen: object) -> tuple[str, dict[str, int], float]:
    """Run `command`: its output, the peaks of its process tree, its wall time."""
    started = time.perf_counter()
    job = psutil.Popen(command, stdout=subprocess.PIPE, **popen)
    peaks = {"rss": 0, "pss": 0, "largest": 0}
    stop = threading.Event()
    sampler = threading.Thread(target=peak_memory, args=(job, stop, peaks))
    sampler.start()
    output = job.communicate()[0].decode()
    stop.set()
    sampler.join()
    if job.returncode:
        raise SystemExit(f"{command[:4]} failed ({job.returncode}):\n{output[-3000:]}")
    return output, peaks, time.perf_counter() - started


def row(rows: int, job: str, in_memory: int, peaks: dict[str, int], wall: float) -> str:
    return (
        f"| {rows / 1e6:.0f}M | {job} | {in_memory / GIB:.2f} GiB "
        f"| {peaks['pss'] / GIB:.2f} GiB = {peaks['pss'] / in_memory:.2f}x "
        f"| {peaks['rss'] / GIB:.2f} GiB = {peaks['rss'] / in_memory:.2f}x "
        f"| {peaks['largest'] / GIB:.2f} GiB | {wall:.0f} s |"
    )


def xgboost_alone(folder: str) -> None:
    """The floor (in its own process), streamed as the project's workers stream: quantile
    matrices over each file's share of training and of validation rows, read one file at a
    time, then 100 rounds with the project's parameters, evaluated on both."""
    import xgboost

    split = yaml.safe_load(Path("conf/data/synthetic.yaml").read_text())
    shares = (0.0, 1 - split["valid_size"] - split["test_size"], 1 - split["test_size"])
    files = sorted(Path(folder).glob("*.parquet"))
    features = [name for name in pq.read_schema(files[0]).names if name != "target"]

    class Files(xgboost.DataIter):
        def __init__(self, start: float, stop: float) -> None:
            self.start, self.stop, self.index = start, stop, 0
            super().__init__()

        def next(self, input_data) -> bool:  # type: ignore[no-untyped-def]
            if self.index == len(files):
                return False
            part = pd.read_parquet(files[self.index])
            part = part.iloc[int(len(part) * self.start) : int(len(part) * self.stop)]
            input_data(data=part[features], label=part["target"])
            self.index += 1
            return True

        def reset(self) -> None:
            self.index = 0

    train = xgboost.QuantileDMatrix(Files(*shares[:2]), nthread=2)
    valid = xgboost.QuantileDMatrix(Files(*shares[1:]), ref=train, nthread=2)
    # What the project's estimator passes to xgboost.train (one place: its model spec).
    baked = project()
    cfg = baked.load_params()
    arguments = baked.spec(cfg.model).arguments(cfg.model, cfg.seed) | {"n_jobs": 2}
    settings = xgboost.XGBClassifier(**arguments).get_xgb_params()
    evals = [(train, "train"), (valid, "valid")]
    xgboost.train(settings, train, 100, evals=evals, verbose_eval=False)


def measure(rows: int, cluster: list[str], computes: tuple[str, ...] = ("dask",)) -> str:
    """One job per compute kind in a fresh folder (its data generated first); with the default
    cluster at the first row count, the floor on the same files too (not against local)."""
    package = project_package()
    work = Path(tempfile.mkdtemp())
    shutil.copy("params.yaml", work)
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
    }
    cli = [sys.executable, "-m", f"{package}.cli"]
    quiet = {"cwd": work, "env": env, "check": True, "capture_output": True}
    subprocess.run([*cli, "data", *overrides(rows)], **quiet)  # type: ignore[call-overload]
    raw = work / "data/raw/synthetic"
    parts = sorted(raw.glob("*.parquet"))
    in_memory = sum(int(pd.read_parquet(p).memory_usage(deep=True).sum()) for p in parts)

    lines = []
    for compute in computes:
        command = [*cli, "train", *overrides(rows, compute), *cluster]
        output, peaks, wall = sampled(command, cwd=work, env=env)
        auc = next(part for part in output.split() if part.startswith("test_auc="))
        job = f"{' '.join(cluster) or JOBS[compute]}, {auc.rstrip(',')}"
        lines.append(row(rows, job, in_memory, peaks, wall))
    if not cluster and rows == ROWS[0] and not AGAINST_LOCAL:
        floor_env = env | {"ARROW_DEFAULT_MEMORY_POOL": "system"}  # as the workers start
        _, floor, wall = sampled([sys.executable, __file__, "--floor", str(raw)], env=floor_env)
        lines.append(row(rows, "XGBoost alone, one process (the floor)", in_memory, floor, wall))
    shutil.rmtree(work)
    return "\n".join(lines)


def main() -> None:
    print("| rows | job | data in memory | peak PSS (tree) | peak RSS (tree) | largest process "
          "(PSS) | wall time |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    if AGAINST_LOCAL:
        for rows in ROWS:
            print(measure(rows, [], ("dask", "local")), flush=True)
        return
    runs = [(rows, []) for rows in ROWS] + [(ROWS[0], TWO_WORKERS)]
    for rows, cluster in runs:
        print(measure(rows, cluster), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--floor"]:
        xgboost_alone(sys.argv[2])
    else:
        main()
