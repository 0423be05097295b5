"""A training job against the team server's topology (PostgreSQL, S3 emulator, basic-auth
`mlflow server` with the compose file's flags) vs the embedded sqlite store, median of 3 each,
measured side by side. Run from a baked project's root after `make test` installed the
team-test extras (see `make bench`)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import import_module
from pathlib import Path

sys.path.insert(0, "tests")  # the project's own harness for this topology
from team_server import team_server

from common import package as project_package

RUNS = 3


def main() -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    package = project_package()
    data = import_module(f"{package}.data")
    work = Path(tempfile.mkdtemp())
    raw = "data/raw/breast_cancer.csv"
    data.materialize(work / raw)
    shutil.copy(f"{raw}.dvc", work / f"{raw}.dvc")
    command = [sys.executable, "-m", f"{package}.cli", "train"]

    def median_seconds(env: dict[str, str]) -> float:
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            subprocess.run(
                command, cwd=work, env={**os.environ, **env}, check=True, capture_output=True
            )
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    with team_server(Path(tempfile.mkdtemp())) as server:
        remote = median_seconds(
            {
                "MLFLOW_TRACKING_URI": server.uri,
                "MLFLOW_TRACKING_USERNAME": server.username,
                "MLFLOW_TRACKING_PASSWORD": server.password,
            }
        )
        local = median_seconds({"MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"})
    print(f"train job (default config), median of {RUNS}:")
    print(f"  embedded sqlite: {local:.1f} s, team server: {remote:.1f} s")
    print(f"  ratio server / embedded: {remote / local:.2f}x")


if __name__ == "__main__":
    main()
