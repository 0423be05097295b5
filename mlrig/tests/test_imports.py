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


def loaded(workspace: Path, *command: str, codes: tuple[int | None, ...] = (0, None)) -> list[str]:
    env = {**os.environ, **pythonpath()}
    done = subprocess.run([sys.executable, "-c", REPORT, *command], cwd=workspace, env=env,
                          capture_output=True, text=True)  # fmt: skip
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in codes, done.stdout + done.stderr
    return report["loaded"]


@pytest.mark.parametrize("command", [["--help"], ["train", "--help"], ["data"], ["check"]])
def test_light_commands_import_no_heavy_library(workspace: Path, command: list[str]) -> None:
    """`check` reads the raw data's rows too: a small plain CSV file without pandas."""
    assert loaded(workspace, *command) == []


def test_doctor_imports_mlflow_and_nothing_heavy_beyond_what_mlflow_imports(
    workspace: Path, tmp_path: Path
) -> None:
    """The doctor proves MLflow's own client can use the store (auth, an artifact's round
    trip, the runs left RUNNING): MLflow is the check, with what its client imports to open
    a sqlite store (NumPy, pandas, SQLAlchemy); no training, plotting or cluster library."""
    store = f"sqlite:///{tmp_path / 'reference.db'}"
    client = f"import json, sys, mlflow; mlflow.MlflowClient({store!r}).search_experiments()"
    done = subprocess.run([sys.executable, "-c", f"{client}; print(json.dumps(list(sys.modules)))"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    with_mlflow = set(json.loads(done.stdout.splitlines()[-1])) & set(HEAVY)
    assert "mlflow" in with_mlflow
    assert set(loaded(workspace, "doctor", codes=(0, 1))) <= with_mlflow  # 1: a check failed
