"""Scale: a tracked training job with compute=dask on 10M rows x 20 features of synthetic data,
on this machine's LocalCluster. Prints the data's in-memory size, the peak memory of the whole
process tree (client, scheduler, workers; sampled every 0.25 s) and their ratio, and the wall
time. Run from a baked project's root (see `make bench`); ROWS can be set in the environment.
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

from common import package as project_package

ROWS = int(os.environ.get("ROWS", 10_000_000))
OVERRIDES = [
    "compute=dask",
    "data=synthetic",
    f"data.synthetic.n_rows={ROWS}",
    "data.synthetic.partition_rows=1000000",
    "model.n_estimators=100",
    "model.early_stopping_rounds=0",
]


def peak_memory(root: psutil.Process, stop: threading.Event, peaks: dict[str, int]) -> None:
    """Largest sums of RSS and of PSS (shared pages split between processes) over the tree."""
    while not stop.is_set():
        rss = pss = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                memory = process.memory_full_info()
            except psutil.Error:
                continue
            rss, pss = rss + memory.rss, pss + memory.pss
        peaks["rss"], peaks["pss"] = max(peaks["rss"], rss), max(peaks["pss"], pss)
        stop.wait(0.25)


def main() -> None:
    package = project_package()
    work = Path(tempfile.mkdtemp())
    shutil.copy("params.yaml", work)
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
    }
    cli = [sys.executable, "-m", f"{package}.cli"]
    subprocess.run([*cli, "data", *OVERRIDES], cwd=work, env=env, check=True)
    parts = sorted((work / "data/raw/synthetic").glob("*.parquet"))
    in_memory = sum(int(pd.read_parquet(p).memory_usage(deep=True).sum()) for p in parts)

    started = time.perf_counter()
    job = psutil.Popen([*cli, "train", *OVERRIDES], cwd=work, env=env, stdout=subprocess.PIPE)
    peaks = {"rss": 0, "pss": 0}
    stop = threading.Event()
    sampler = threading.Thread(target=peak_memory, args=(job, stop, peaks))
    sampler.start()
    output = job.communicate()[0].decode()
    stop.set()
    sampler.join()
    elapsed = time.perf_counter() - started
    if job.returncode:
        raise SystemExit(f"training failed ({job.returncode}):\n{output[-3000:]}")
    metrics = next(line for line in output.splitlines() if line.startswith("Metrics:"))
    gib = 1024**3
    print(f"{ROWS:,} rows x 20 float32 features in {len(parts)} Parquet partitions")
    print(f"  data in memory: {in_memory / gib:.2f} GiB; job wall time {elapsed:.0f} s")
    for kind in ("pss", "rss"):
        print(
            f"  peak {kind.upper()} of the process tree: {peaks[kind] / gib:.2f} GiB "
            f"= {peaks[kind] / in_memory:.2f}x the data"
        )
    print(f"  {metrics}")


if __name__ == "__main__":
    main()
