"""Onboarding: what `make run` does from a fresh clone of the template -- bake, then the
project's `make setup run` -- step by step, with a warm uv cache, against a bare `uv sync
--locked` of the same lock into a fresh venv (the floor any locked install pays). Also the
venv's size. Run from the template's root (`make bench`), with the template's venv present.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path.cwd()
SLUG = "tumor-classifier"


def timed(label: str, command: list[str], cwd: Path, times: dict[str, float]) -> None:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    times[label] = time.perf_counter() - started


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="onboarding-"))
    clone = work / "template"
    subprocess.run(["git", "clone", "--quiet", str(TEMPLATE), str(clone)], check=True)
    cookiecutter = str(Path(sys.executable).with_name("cookiecutter"))
    times: dict[str, float] = {}
    timed("bake", [cookiecutter, "--no-input", "--output-dir", str(work), str(clone)], work, times)
    project = work / SLUG
    steps = {  # what `make setup run` does, one step at a time (tasks.py's own functions)
        "uv: pinned, installed with pip": "tasks.uv('--version')",
        "uv lock (a new project)": "tasks.uv('lock', '--python', sys.executable)",
        "uv sync --locked + bytecode": "tasks.install(*tasks.extras())",
        "data: materialise, verify, dvc push": "tasks.cli('data')",
        "experiment: sqlite store + experiment": "tasks.cli('init-tracking')",
        "pipeline: dvc repro": "tasks.run([])",
    }
    python = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}") or "python3"
    for label, call in steps.items():
        timed(label, [python, "-c", f"import sys, tasks; {call}"], project, times)
    venv = size_mb(project / ".venv")

    bare = work / "bare"
    bare.mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md", "src"):
        source = project / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, bare / name)
    uv = [str(project / ".uv" / "bin" / "uv"), "sync", "--locked", "--python", python]
    timed("bare uv sync --locked", uv, bare, times)

    total = sum(v for k, v in times.items() if not k.startswith("bare"))
    print(f"Onboarding (fresh clone -> registered model), warm uv cache, {sys.version.split()[0]}:")
    for label, seconds in times.items():
        print(f"  {label:<40} {seconds:6.1f} s")
    print(f"  {'total (bake + setup + run)':<40} {total:6.1f} s")
    print(f"  ratio total / bare uv sync: {total / times['bare uv sync --locked']:.1f}x")
    print(f"  venv: {venv:.0f} MB")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
