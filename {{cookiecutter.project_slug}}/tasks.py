#!/usr/bin/env python3
"""The project's tasks, standard library only: `python3 tasks.py setup run` does what
`make setup run` does (the Makefile calls this file), so nothing needs GNU make.

`python3 tasks.py help` lists the tasks. The venv is made with the Python that runs this file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
PACKAGE = "{{ cookiecutter.package_name }}"
UI_ADDRESS = ("127.0.0.1", "5000")
CLEANED = (
    "data/processed", "models/model", "reports", "dvc_plots", ".hydra-runs", ".pytest_cache",
    ".ruff_cache",
)  # fmt: skip
TASKS: dict[str, tuple[Callable[[list[str]], None], str]] = {}


def task(summary: str) -> Callable[[Callable[[list[str]], None]], Callable[[list[str]], None]]:
    def register(function: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
        TASKS[function.__name__.rstrip("_")] = (function, summary)
        return function

    return register


def sh(*command: str | Path) -> None:
    """Run a command in the project root with the venv first on PATH (dvc stages call `python`)."""
    print("+", " ".join(map(str, command)), flush=True)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run([str(part) for part in command], cwd=ROOT, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(done.returncode)


def cli(*args: str) -> None:
    sh(BIN / "python", "-m", f"{PACKAGE}.cli", *args)


def extras() -> str:
{%- if cookiecutter.model_library == "xgboost" %}
    """The optional dependencies `setup` installs: XGBOOST=cpu (default) or cuda."""
    build = os.environ.get("XGBOOST", "cpu")
    if build not in ("cpu", "cuda"):
        raise SystemExit(f'XGBOOST must be cpu or cuda, not "{build}"')
    return f"dev,{build}"
{%- else %}
    """The optional dependencies `setup` installs."""
    return "dev"
{%- endif %}


def install(extra: str) -> None:
    """Create .venv with uv in it, then install the project with these extras (bytecode
    compiled: `import mlflow` starts ~3x faster)."""
    if not (BIN / "uv").exists():
        sh(sys.executable, "-m", "venv", VENV)
        sh(BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv")
    uv_pip = (BIN / "uv", "pip", "install", "--quiet", "--compile-bytecode")
    sh(*uv_pip, "--python", BIN / "python", "-e", f".[{extra}]")


@task("create .venv (bytecode compiled), fetch the data, create the MLflow experiment")
def setup(args: list[str]) -> None:
    install(extras())
    cli("data", *args)
    cli("init-tracking")


@task("dvc pull the raw data (or materialise it and push it to the DVC remote)")
def data(args: list[str]) -> None:
    cli("data", *args)


@task("the pipeline: prepare -> train -> evaluate -> registered model (dvc repro)")
def run(args: list[str]) -> None:
    sh(BIN / "dvc", "repro", *args)


@task("the project's tests (pytest arguments pass through, e.g. -m 'not slow')")
def test(args: list[str]) -> None:
{%- if cookiecutter.team_server == "yes" %}
    stamp = VENV / ".team-test"  # the team-server topology's test extras, installed once
    if not stamp.exists() or stamp.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        install(f"{extras()},team-test")
        stamp.touch()
{%- endif %}
    sh(BIN / "pytest", *args)


@task("ruff check + format check + the import layers (lint-imports)")
def lint(args: list[str]) -> None:
    sh(BIN / "ruff", "check", ".")
    sh(BIN / "ruff", "format", "--check", ".")
    sh(BIN / "lint-imports", "--no-logo")


@task("apply ruff fixes and formatting")
def format_(args: list[str]) -> None:
    sh(BIN / "ruff", "check", "--fix", ".")
    sh(BIN / "ruff", "format", ".")


@task("check the tracking server, credentials, artifact store, DVC remote and git")
def doctor(args: list[str]) -> None:
    cli("doctor")


@task("replay runs spooled while the tracking server was unreachable (.mlflow-spool/)")
def sync(args: list[str]) -> None:
    cli("sync")


@task("apply the retention policy: delete old failed runs, purge deleted runs' artifacts")
def gc(args: list[str]) -> None:
    cli("gc", *args)


@task(f"MLflow UI on the embedded store, http://{':'.join(UI_ADDRESS)}")
def ui(args: list[str]) -> None:
    host, port = UI_ADDRESS
    store = "sqlite:///mlflow.db"
    sh(BIN / "mlflow", "ui", "--backend-store-uri", store, "--host", host, "--port", port)


@task("remove pipeline outputs and caches (keeps data, .venv and the MLflow store)")
def clean(args: list[str]) -> None:
    for name in CLEANED:
        shutil.rmtree(ROOT / name, ignore_errors=True)


@task("list the tasks")
def help_(args: list[str]) -> None:
    for name, (_, summary) in TASKS.items():
        print(f"  {name:<8} {summary}")


def main(argv: list[str]) -> int:
    """`tasks.py NAME [NAME ...]`, or `tasks.py NAME -- ARGS` to pass arguments to one task."""
    names, args = argv or ["help"], []
    if "--" in names:
        at = names.index("--")
        names, args = names[:at], names[at + 1 :]
    unknown = [name for name in names if name not in TASKS]
    if unknown:
        print(f"unknown task(s) {unknown}; `python3 tasks.py help` lists them", file=sys.stderr)
        return 2
    for name in names:
        TASKS[name][0](args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
