#!/usr/bin/env python3
"""The project's tasks, standard library only: `python3 tasks.py setup run` does what
`make setup run` does (the Makefile calls this file), so nothing needs GNU make.

`python3 tasks.py help` lists the tasks. The venv is exactly uv.lock (`uv sync --locked`),
made with the Python that runs this file; uv itself is installed into .uv/ (pinned) when needed.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
WINDOWS = os.name == "nt"


def scripts(venv: Path, windows: bool = WINDOWS) -> Path:
    """A venv's folder of executables: Scripts on Windows, bin elsewhere."""
    return venv / ("Scripts" if windows else "bin")


def executable(folder: Path, name: str, windows: bool = WINDOWS) -> Path:
    """The file of an executable in a folder (Windows: NAME.exe)."""
    return folder / (f"{name}.exe" if windows else name)


VENV = ROOT / ".venv"
BIN = scripts(VENV)
PACKAGE = "{{ cookiecutter.package_name }}"
UV = executable(ROOT / ".uv" / "bin", "uv")  # pip --target: bin/ on every platform
UV_VERSION = "0.13.9"  # the uv every machine of the project uses (pyproject: required-version)
# What the tests need beyond `setup`{{ ": compute=dask" if cookiecutter.model_library == "xgboost" }}{{ ", the team server's topology" if cookiecutter.team_server == "yes" }}.
{%- set tested = ['"--group", "dev"'] + (['"--group", "dask"'] if cookiecutter.model_library == "xgboost" else []) + (['"--group", "team"'] if cookiecutter.team_server == "yes" else []) %}
TESTED: tuple[str, ...] = ({{ tested | join(", ") }})
UI_ADDRESS = ("127.0.0.1", "5000")
CLEANED = (
    "data/processed", "models/model", "reports", "dvc_plots", ".hydra-runs", ".pytest_cache",
    ".ruff_cache", ".mypy_cache",
)  # fmt: skip
# Windows: `python3` in the venv's Scripts (first on PATH where tasks.py runs DVC).
PYTHON3_CMD = '@"%~dp0python.exe" %*\n'  # written in text mode: CRLF there
TASKS: dict[str, tuple[Callable[[list[str]], None], str]] = {}


def task(
    summary: str, name: str | None = None
) -> Callable[[Callable[[list[str]], None]], Callable[[list[str]], None]]:
    def register(function: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
        TASKS[name or function.__name__.rstrip("_")] = (function, summary)
        return function

    return register


def sh(*command: str | Path) -> None:
    """Run a command in the project root with the venv first on PATH (dvc stages call `python`)."""
    print("+", " ".join(map(str, command)), flush=True)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("VIRTUAL_ENV", None)
    process = subprocess.Popen([str(part) for part in command], cwd=ROOT, env=env)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached the command too (one process group): it ends its run as KILLED and
        # says so in one line; a second Ctrl-C stops it at once.
        try:
            code = process.wait()
        except KeyboardInterrupt:
            process.kill()
            code = process.wait()
    if code != 0:
        raise SystemExit(code if code > 0 else 128 - code)


def cli(*args: str) -> None:
    sh(BIN / "python", "-m", f"{PACKAGE}.cli", *args)


def uv(*args: str | Path) -> None:
    """Run the project's pinned uv (installed into .uv/ by pip on first use)."""
    if not UV.exists():
        target = ROOT / ".uv"
        sh(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--target", target, f"uv=={UV_VERSION}")  # fmt: skip
    os.environ["UV_PYTHON_DOWNLOADS"] = "never"  # the interpreter is the one running tasks.py
    sh(UV, *args)


def extras() -> list[str]:
{%- if cookiecutter.model_library == "xgboost" %}
    """The dependency groups `setup` installs besides the default ones: XGBOOST=cuda (instead
    of cpu); DASK=1 adds compute=dask."""
    build = os.environ.get("XGBOOST", "cpu")
    if build not in ("cpu", "cuda"):
        raise SystemExit(f'XGBOOST must be cpu or cuda, not "{build}"')
    chosen = ["--no-group", "cpu", "--group", "cuda"] if build == "cuda" else []
    return [*chosen, *(["--group", "dask"] if os.environ.get("DASK") else [])]
{%- else %}
    """The dependency groups `setup` installs besides the default ones (none)."""
    return []
{%- endif %}


def compile_ahead() -> bool:
    """Whether `install` compiles the venv's bytecode ahead of time: yes, unless BYTECODE=0 (a
    venv made for one CI job, where Python compiles, on import, only what the job imports)."""
    value = os.environ.get("BYTECODE") or "1"
    if value not in ("0", "1"):
        raise SystemExit(f'BYTECODE must be 0 or 1, not "{value}"')
    return value == "1"


def install(*options: str) -> None:
    """Install .venv from uv.lock (`uv sync --locked`) and compile its bytecode unless
    BYTECODE=0 (`import mlflow` starts ~3x faster the first time), leaving out the test suites
    that libraries ship. Without uv.lock (a new project), make it first: then commit it."""
    check_python()
    if not (ROOT / "uv.lock").exists():
        uv("lock", "--python", sys.executable)
        print("Created uv.lock: commit it, so that every machine installs these versions.")
    try:
        uv("lock", "--check", "--quiet", "--python", sys.executable)
    except SystemExit:
        print(
            "uv.lock does not match pyproject.toml: run `make lock` and commit uv.lock.",
            file=sys.stderr,
        )
        raise
    uv("sync", "--locked", "--quiet", "--python", sys.executable, *options)
    if WINDOWS:  # dvc.yaml's stages run `python3 tasks.py`: a Windows venv has no python3.exe
        (BIN / "python3.cmd").write_text(PYTHON3_CMD)
    if compile_ahead():
        tests = r"[\\/]tests?[\\/]"
        sh(BIN / "python", "-m", "compileall", "-q", "-j0", "-x", tests, VENV / "lib")


def install_tools() -> None:
    """The venv with the dev group too: ruff, mypy, import-linter, pre-commit and the hooks'
    tools (`lint`, `format`, `hooks`, `hooks-run`)."""
    install(*extras(), "--group", "dev", "--inexact")


def default_remote() -> tuple[str, str]:
    """The default DVC remote's name and URL."""

    def dvc(*args: str) -> str:
        command = [str(BIN / "dvc"), *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout

    name = dvc("remote", "default").strip()  # (`dvc remote list` wraps long lines)
    return name, dvc("config", f"remote.{name}.url").strip() if name else ""


def point_s3_remote(endpoint: str, name: str, url: str) -> None:
    """DVC_S3_ENDPOINT_URL: the endpoint of the default remote, where that is on S3."""
    if not url.startswith("s3://"):
        print(f"note: DVC_S3_ENDPOINT_URL is set, but the default DVC remote {name!r} is not "
              f"on S3 ({url}): the variable is ignored")  # fmt: skip
        return
    sh(BIN / "dvc", "remote", "modify", "--local", name, "endpointurl", endpoint)


def check_python(version: tuple[int, int] = sys.version_info[:2]) -> None:
    """The Python running tasks.py makes the venv: refuse one older than requires-python."""
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(r'^requires-python = ">=(\d+)\.(\d+)', text, re.MULTILINE)
    if found and version < (int(found[1]), int(found[2])):
        least = f"{found[1]}.{found[2]}"
        raise SystemExit(
            f"this is Python {version[0]}.{version[1]} ({sys.executable}); the project needs "
            f">={least} (requires-python in pyproject.toml): `make setup PYTHON=python{least}`"
        )


@task("install .venv from uv.lock, fetch the data, create the MLflow experiment")
def setup(args: list[str]) -> None:
    install(*extras())
    endpoint = os.environ.get("DVC_S3_ENDPOINT_URL")
    if endpoint:  # the S3-compatible endpoint of the default DVC remote (CI: a secret)
        point_s3_remote(endpoint, *default_remote())
    cli("data", *args)
    cli("init-tracking")


def interpreter() -> Path:
    """The project's Python: its .venv's; in a DVC experiment's copy of the project (under
    .dvc/tmp/), the .venv of the project that holds the copy; else the venv running tasks.py."""
    roots = [ROOT]
    if ".dvc" in ROOT.parts:
        roots.append(Path(*ROOT.parts[: ROOT.parts.index(".dvc")]))
    for root in roots:
        python = executable(scripts(root / ".venv"), "python")
        if python.exists():
            return python
    if sys.prefix != sys.base_prefix:
        return Path(sys.executable)
    raise SystemExit(f"no .venv in {ROOT}: run `make setup` first")


@task("run a stage of dvc.yaml (ARGS=its name) with the project's Python, not PATH's")
def stage(args: list[str]) -> None:
    stages = sorted(path.stem for path in (ROOT / "src" / PACKAGE / "stages").glob("[!_]*.py"))
    if len(args) != 1 or args[0] not in stages:
        raise SystemExit(f"stage: name one of {stages}, e.g. `python3 tasks.py stage -- prepare`")
    command = [str(interpreter()), "-m", f"{PACKAGE}.stages.{args[0]}"]
    sys.stdout.flush()
    if WINDOWS:  # os.execv would end this process before the stage ends, and DVC with it
        raise SystemExit(subprocess.call(command))
    # The stage replaces this process: DVC's signals reach it directly.
    os.execv(command[0], command)  # noqa: S606


@task("uv lock after editing pyproject.toml (ARGS=--upgrade moves every pin forward)")
def lock(args: list[str]) -> None:
    uv("lock", "--python", sys.executable, *args)


@task("dvc pull the raw data (or materialise it and push it to the DVC remote)")
def data(args: list[str]) -> None:
    cli("data", *args)


@task("the pipeline: prepare -> train (one MLflow run) -> registered model (dvc repro)")
def run(args: list[str]) -> None:
    cli("check")  # before DVC rewrites a .dvc pointer or removes outputs
    sh(BIN / "dvc", "repro", *args)


@task('an experiment: dvc exp run (ARGS="-S model.max_depth=6"), its overrides checked first')
def exp(args: list[str]) -> None:
    pairs = itertools.pairwise(args)
    overrides = [value for flag, value in pairs if flag in ("-S", "--set-param")]
    overrides += [a.split("=", 1)[1] for a in args if a.startswith("--set-param=")]
    # `dvc exp run` composes conf/ with them into params.yaml: check that before DVC writes.
    cli("check", "--conf", *(o.removeprefix("params.yaml:") for o in overrides))
    sh(BIN / "dvc", "exp", "run", *args)


@task("start the workers of DVC's experiment queue (ARGS: `dvc queue start` options)")
def queue(args: list[str]) -> None:
    sh(BIN / "dvc", "queue", "start", *args)  # DVC starts its workers as the `dvc` on PATH


@task("`mlflow run .` (ARGS: its options) with the project's experiment and .env", "mlflow-run")
def mlflow_run(args: list[str]) -> None:
    cli("mlflow-run", *args)


@task("the project's tests, the quick tier, with coverage (pytest arguments pass through)")
def test(args: list[str]) -> None:
    install(*extras(), *TESTED, "--inexact")
    # The coverage floor is the whole quick tier's: a narrower run reports without it.
    sh(BIN / "pytest", *(["--cov-fail-under=0", *args] if args else []))


@task("the slow tier: a Dask cluster, the team server's topology, every module's DVC dependency",
      "test-slow")  # fmt: skip
def test_slow(args: list[str]) -> None:
    test(["-m", "slow", "--no-cov", *args])


@task("install the git hooks (.pre-commit-config.yaml); CI runs them on every file")
def hooks(args: list[str]) -> None:
    install_tools()
    sh(BIN / "pre-commit", "install", *args)


@task("run every git hook on every file, as CI does (ARGS: `pre-commit run` options)",
      "hooks-run")  # fmt: skip
def hooks_run(args: list[str]) -> None:
    install_tools()
    sh(BIN / "pre-commit", "run", *(args or ["--all-files"]))


@task("run a tool of .venv, or uv (`tasks.py tool -- ruff check .`): the git hooks' entry")
def tool(args: list[str]) -> None:
    if not args:
        raise SystemExit("tool: name it, e.g. `python3 tasks.py tool -- ruff check .`")
    if args[0] == "uv":
        uv(*args[1:])
    elif executable(BIN, args[0]).is_file():
        sh(BIN / args[0], *args[1:])
    else:
        raise SystemExit(f"tool: {args[0]} is not in {BIN}: `make hooks` installs the tools")


@task("audit uv.lock against the OSV vulnerability database (uv audit; OSV_API_URL: a mirror)")
def audit(args: list[str]) -> None:
    mirror = os.environ.get("OSV_API_URL")
    uv("audit", "--frozen", "--preview-features", "audit-command",
       *(["--service-url", mirror] if mirror else []), *args)  # fmt: skip


@task("ruff check + format check + types (mypy, strict) + the import layers (lint-imports)")
def lint(args: list[str]) -> None:
    install_tools()
    sh(BIN / "ruff", "check", ".")
    sh(BIN / "ruff", "format", "--check", ".")
    sh(BIN / "mypy")
    sh(BIN / "lint-imports", "--no-logo")


@task("apply ruff fixes and formatting")
def format_(args: list[str]) -> None:
    install_tools()
    sh(BIN / "ruff", "check", "--fix", ".")
    sh(BIN / "ruff", "format", ".")


@task("an Optuna study over conf/search/<model kind>.yaml (resumable; ARGS pass through)")
def tune(args: list[str]) -> None:
    cli("tune", *args)


@task('score a batch with @champion: ARGS="--input data/batch.parquet --output preds.parquet"')
def score(args: list[str]) -> None:
    cli("score", *args)


@task("check the tracking server, credentials, artifact store, DVC remote and git")
def doctor(args: list[str]) -> None:
    cli("doctor")


@task("replay runs spooled while the tracking server was unreachable (.mlflow-spool/)")
def sync(args: list[str]) -> None:
    cli("sync")


@task("after moving or copying the project: its sqlite store's artifact locations follow")
def relocate(args: list[str]) -> None:
    cli("relocate")


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
