"""The import budget of the light commands: what a command does not use, it does not import
(`python -m <package>.cli --help` in a fraction of a second; `data`, and `check` on a small
CSV file, without NumPy, pandas or MLflow). A subprocess runs the command and reports the
heavy modules it loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pythonpath

HEAVY = ("numpy", "pandas", "mlflow", "matplotlib", "sklearn", "xgboost", "sqlalchemy", "dask")
REPORT = f"""
import json, runpy, sys
sys.argv = ["cli", *sys.argv[1:]]
try:
    runpy.run_module("demo.cli", run_name="__main__")
except SystemExit as stopped:
    code = stopped.code
else:
    code = 0
loaded = sorted(name for name in {HEAVY!r} if name in sys.modules)
print(json.dumps({{"code": code, "loaded": loaded}}), file=sys.stderr)
"""


def loaded(workspace: Path, *command: str) -> list[str]:
    env = {**os.environ, **pythonpath()}
    done = subprocess.run([sys.executable, "-c", REPORT, *command], cwd=workspace, env=env,
                          capture_output=True, text=True)  # fmt: skip
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stdout + done.stderr
    return report["loaded"]


@pytest.mark.parametrize("command", [["--help"], ["train", "--help"], ["data"], ["check"]])
def test_light_commands_import_no_heavy_library(workspace: Path, command: list[str]) -> None:
    """`check` reads the raw data's rows too: a small plain CSV file without pandas."""
    assert loaded(workspace, *command) == []
