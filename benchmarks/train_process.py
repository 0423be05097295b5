"""Whole processes: `python -m <package>.cli train` (compose conf/, load and split the data,
fit, log the run, evaluate, report, register) vs a bare script that loads the same data, fits
the same XGBoost model with the same parameters and threads and saves it -- each a fresh
Python process, as a user runs them. At the default data and at SIZES synthetic rows
(comma-separated in the environment; default 200000,1000000); RUNS times each (default 3),
interleaved; min/median/max seconds and the ratio of medians. Run from a baked project's root
after `make setup` (see `make bench`); each tracked run goes to a throw-away sqlite store.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlrig.data import fetch

from common import package
from common import project as baked_project

SIZES = tuple(int(n) for n in os.environ.get("SIZES", "200000,1000000").split(",") if n)
RUNS = int(os.environ.get("RUNS", 3))
# The bare script: the same file(s), a seeded split of the same sizes, the same fit and save.
BARE = """
import json, sys
import numpy as np, pandas as pd
from xgboost import XGBClassifier
spec = json.loads(sys.argv[1])
path = spec["raw_path"]
frame = pd.read_parquet(path) if not path.endswith(".csv") else pd.read_csv(path)
order = np.random.default_rng(spec["seed"]).permutation(len(frame))
n_test, n_valid = int(len(frame) * spec["test_size"]), int(len(frame) * spec["valid_size"])
valid = frame.iloc[order[n_test:n_test + n_valid]]
train = frame.iloc[order[n_test + n_valid:]]
x, y = train[spec["features"]], train[spec["target"]]
evals = [(x, y), (valid[spec["features"]], valid[spec["target"]])]
model = XGBClassifier(**spec["arguments"]).fit(x, y, eval_set=evals, verbose=False)
model.save_model(spec["out"])
"""


def compare(label: str, overrides: list[str], work: Path) -> None:
    project = baked_project()
    cfg = project.composed(overrides)
    fetch(project, cfg.data)  # generated (synthetic) or pulled before timing
    spec = project.spec(cfg.model)
    bare_spec = {
        "raw_path": str(Path(cfg.data.raw_path).resolve()), "seed": cfg.seed,
        "test_size": cfg.data.test_size, "valid_size": cfg.data.valid_size,
        "features": cfg.data.features, "target": cfg.data.target,
        "arguments": spec.arguments(cfg.model, cfg.seed), "out": str(work / "bare.ubj"),
    }  # fmt: skip
    store = work / f"{label}.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    variants = {
        "cli train": [sys.executable, "-m", f"{package()}.cli", "train", *overrides],
        "bare script": [sys.executable, "-c", BARE, json.dumps(bare_spec)],
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(RUNS):
        for name, command in variants.items():
            started = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True)
            times[name].append(time.perf_counter() - started)
    for name, values in times.items():
        shown = f"min {min(values):.2f} s, median {statistics.median(values):.2f} s"
        print(f"{label:>12} {name:<11}: {shown}, max {max(values):.2f} s", flush=True)
    ratio = statistics.median(times["cli train"]) / statistics.median(times["bare script"])
    print(f"{label:>12} ratio of medians {ratio:.2f}x ({RUNS} runs each, interleaved)", flush=True)


def main() -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    work = Path(tempfile.mkdtemp(prefix="train-process-"))
    compare("default data", [], work)
    for rows in SIZES:
        compare(f"{rows:,} rows", ["data=synthetic", f"data.producer.n_rows={rows}"], work)


if __name__ == "__main__":
    main()
