"""A training job against a team server's topology (PostgreSQL, S3 emulator, basic-auth
`mlflow server` with proxied artifacts: mlrig.testing) vs the embedded sqlite store, median of
3 each, measured side by side. Run from a baked project's root after `make test` installed the
team-test extras (see `make bench`)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlrig.testing import team_server

from common import package, project

RUNS = 3


def main() -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    baked = project()
    data = baked.load_params().data
    work = Path(tempfile.mkdtemp())
    baked.producer(data.producer).produce(work / data.raw_path, data.producer, data)
    shutil.copy(f"{data.raw_path}.dvc", work / f"{data.raw_path}.dvc")
    command = [sys.executable, "-m", f"{package()}.cli", "train"]

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
