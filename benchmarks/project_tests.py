"""A baked project's own test tiers, whole commands as a developer types them: `make test`
(the quick tier: its code and one end-to-end run) and `make test-slow` (a Dask cluster, the
team topology, every module's DVC dependency), RUNS times each, interleaved, min/median/max
wall seconds. Run from a baked project's root after `make setup` (see `make bench`); the first
`make test` installs the test groups and is not counted."""

from __future__ import annotations

import os
import statistics
import subprocess
import time

RUNS = int(os.environ.get("RUNS", 3))
TIERS = {"make test": ["make", "test"], "make test-slow": ["make", "test-slow"]}


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    seconds(TIERS["make test"])  # installs the test groups: not the tier's own time
    times: dict[str, list[float]] = {name: [] for name in TIERS}
    for _ in range(RUNS):
        for name, command in TIERS.items():
            times[name].append(seconds(command))
    for name, values in times.items():
        print(
            f"{name}: min {min(values):.1f} s, median {statistics.median(values):.1f} s, "
            f"max {max(values):.1f} s ({RUNS} runs, interleaved)"
        )
    quick, slow = (statistics.median(times[name]) for name in TIERS)
    print(f"slow tier / quick tier: {slow / quick:.2f}x")


if __name__ == "__main__":
    main()
