"""A venv for one CI job: `make setup` then the quick tier, with bytecode compiled ahead (the
default) and with BYTECODE=0 (Python compiles on import what the job imports), side by side in
one fresh bake: wall time and CPU time (user + sys) of each step. Run from the template's root
(`make bench`), with the template's venv present."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path.cwd()
SLUG = "tumor-classifier"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of a command (and its children); its output if it fails."""
    wall, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{command} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return time.perf_counter() - wall, children_cpu() - cpu


def forget_bytecode(project: Path) -> None:
    """A fresh venv, and no bytecode of the project's own modules either."""
    shutil.rmtree(project / ".venv")
    for cache in project.rglob("__pycache__"):
        shutil.rmtree(cache)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bytecode-"))
    cookiecutter = str(Path(sys.executable).with_name("cookiecutter"))
    subprocess.run([cookiecutter, "--no-input", "--output-dir", str(work), str(TEMPLATE)],
                   check=True, capture_output=True)  # fmt: skip
    project = work / SLUG
    python = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}") or "python3"
    subprocess.run([python, "tasks.py", "setup"], cwd=project, check=True, capture_output=True)
    # Python may write bytecode, as on a GitHub runner; no settings of the caller's own.
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "AWS_"))
        and k not in ("VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    }
    steps = {
        "make setup's install": [python, "-c", "import tasks; tasks.install(*tasks.extras())"],
        "make test's install (test groups)": [
            python, "-c", "import tasks; tasks.install(*tasks.extras(), *tasks.TESTED, '--inexact')"
        ],
        "quick tier (-m 'not slow', -n auto)": [
            str(project / ".venv" / "bin" / "pytest"), "-m", "not slow", "-q", "-p",
            "no:cacheprovider",
        ],
    }  # fmt: skip
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for mode in ("1", "0"):
        forget_bytecode(project)
        env = {**base, "BYTECODE": mode}
        results[mode] = {label: timed(command, project, env) for label, command in steps.items()}

    print(f"A fresh venv for one job, default bake, {sys.version.split()[0]}, warm uv cache:")
    print(f"  {'step':<38} {'ahead: wall / CPU':>20} {'BYTECODE=0: wall / CPU':>24}")
    totals = {mode: [sum(t[i] for t in results[mode].values()) for i in (0, 1)] for mode in "10"}
    for label in steps:
        (w1, c1), (w0, c0) = results["1"][label], results["0"][label]
        print(f"  {label:<38} {w1:8.1f} s / {c1:6.1f} s {w0:10.1f} s / {c0:6.1f} s")
    (w1, c1), (w0, c0) = totals["1"], totals["0"]
    print(f"  {'total':<38} {w1:8.1f} s / {c1:6.1f} s {w0:10.1f} s / {c0:6.1f} s")
    print(f"  ratio ahead / BYTECODE=0: wall {w1 / w0:.2f}x, CPU {c1 / c0:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
