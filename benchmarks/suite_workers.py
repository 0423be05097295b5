"""The baked project's quick tier (`pytest -m "not slow"`) serial and on pytest-xdist workers,
measured side by side. Run from a baked project's root after `make setup` with the test groups
(see `make bench`); WORKERS lists the worker counts (default "2 4")."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

PYTEST = str(Path(sys.executable).with_name("pytest"))


def quick_tier_seconds(workers: int) -> float:
    started = time.perf_counter()
    command = [PYTEST, "-m", "not slow", "-q", "-p", "no:cacheprovider", "-n", str(workers)]
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    serial = quick_tier_seconds(0)
    print(f"quick tier, serial (-n 0): {serial:.1f} s")
    for workers in map(int, os.environ.get("WORKERS", "2 4").split()):
        seconds = quick_tier_seconds(workers)
        print(f"quick tier, -n {workers}: {seconds:.1f} s, {serial / seconds:.2f}x faster")


if __name__ == "__main__":
    main()
