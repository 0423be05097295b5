"""No-op `dvc repro` vs `dvc status` on an up-to-date pipeline, median of 5 runs each, measured
side by side. Run from a baked project's root after `make run` (see `make bench`)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

DVC = str(Path(sys.executable).with_name("dvc"))


def median_seconds(*args: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([DVC, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    repro = median_seconds("repro")
    status = median_seconds("status")
    print(
        f"no-op dvc repro: {repro:.2f} s, dvc status: {status:.2f} s, ratio {repro / status:.2f}x"
    )


if __name__ == "__main__":
    main()
