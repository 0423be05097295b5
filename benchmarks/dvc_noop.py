"""No-op `dvc repro` vs `dvc status` on an up-to-date pipeline: RUNS times each (default 7),
interleaved; min/median/max seconds and the ratio of medians. Run from a baked project's root
after `make run` (see `make bench`)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DVC = str(Path(sys.executable).with_name("dvc"))
RUNS = int(os.environ.get("RUNS", 7))


def main() -> None:
    times: dict[str, list[float]] = {"repro": [], "status": []}
    for _ in range(RUNS):
        for command in times:
            started = time.perf_counter()
            subprocess.run([DVC, command], check=True, capture_output=True)
            times[command].append(time.perf_counter() - started)
    for command, values in times.items():
        print(f"dvc {command:<6}: min {min(values):.2f} s, median {statistics.median(values):.2f} "
              f"s, max {max(values):.2f} s")  # fmt: skip
    ratio = statistics.median(times["repro"]) / statistics.median(times["status"])
    print(f"no-op dvc repro / dvc status: {ratio:.2f}x (medians, {RUNS} runs each, interleaved)")


if __name__ == "__main__":
    main()
