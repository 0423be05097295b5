"""The suite's own scheduling: tests that share a set-up bake (an `xdist_group`) run on one
worker, so the bake is set up once (pytest 9.2 with pytest-xdist 3.8 split the groups)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GROUPED = """
import os, time, pytest
pytestmark = pytest.mark.xdist_group("shared")

@pytest.mark.parametrize("n", range(6))
def test_grouped(n):
    time.sleep(0.2)
    print("WORKER", os.environ["PYTEST_XDIST_WORKER"])
"""


def test_an_xdist_group_runs_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-rP", "-q",
         "-p", "no:cacheprovider", "-c", "/dev/null", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    workers = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("WORKER")}
    assert len(workers) == 1, done.stdout[-3000:]
