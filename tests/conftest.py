"""Shared helpers for the template's tests."""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import ModuleType

import pytest
import yaml

TEMPLATE = Path(__file__).resolve().parents[1]
DEFAULT_SLUG = "tumor-classifier"
RAW = Path("data/raw/breast_cancer.csv")  # a baked project's DVC-tracked raw data


@pytest.fixture(autouse=True, scope="session")
def _git_identity() -> None:
    """Baked projects get a first commit; CI machines may have no git identity."""
    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "ml-template tests")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "tests@ml-template.invalid")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (a stable sort): the xdist workers start on the minutes-long bakes
    and fill the end of the run with the quick ones."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def load_hook(name: str) -> ModuleType:
    """Import a hook as a module (unrendered: its Jinja lives only inside a string)."""
    spec = importlib.util.spec_from_file_location(name, TEMPLATE / "hooks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def loopback_server(
    command: list[str], probe: str, log: Path, timeout_s: float = 120, **popen: object
) -> Iterator[str]:
    """Start a server on 127.0.0.1 (`{port}` in `command` becomes a free port), wait until
    `probe` (a path) answers, yield its base URL; stop it by PID."""
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen(
            [part.format(port=port) for part in command],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen,  # type: ignore[arg-type]
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{base}{probe}", timeout=2)  # loopback only
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def project_env(project: Path) -> dict[str, str]:
    """This environment for a baked project's commands: its venv (and its pinned uv) first on
    PATH, no inherited MLflow or AWS settings, telemetry off, and BYTECODE=0: a venv made for
    one test compiles what it imports, on import, as the project's CI workflows do (so Python
    may write bytecode, as on a GitHub runner)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["BYTECODE"] = "0"
    bins = (project / ".venv" / "bin", project / ".uv" / "bin")
    env["PATH"] = os.pathsep.join([*map(str, bins), env["PATH"]])
    return env


def compiled_share(project: Path) -> float:
    """The share of the modules in a bake's venv (libraries' test suites aside) that have
    their bytecode."""
    packages = project / ".venv" / "lib"
    compiled = {(p.parent.parent, p.name.split(".")[0]) for p in packages.rglob("*.pyc")}
    sources = [p for p in packages.rglob("*.py") if not {"test", "tests"} & set(p.parts)]
    assert sources
    return sum((s.parent, s.stem) in compiled for s in sources) / len(sources)


def sh(project: Path, *command: str, env: dict[str, str] | None = None, timeout: int = 900) -> str:
    """Run a command in a baked project (default environment: `project_env`); fail with its
    output."""
    done = subprocess.run(
        command,
        cwd=project,
        env=env or project_env(project),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{output[-6000:]}"
    return output


def s3_server(log: Path) -> AbstractContextManager[str]:
    """moto's S3 server on loopback."""
    moto = Path(sys.executable).with_name("moto_server")
    return loopback_server([str(moto), "-H", "127.0.0.1", "-p", "{port}"], "/moto-api/", log)


@contextmanager
def osv_stand_in(vulnerable: str | None = None) -> Iterator[str]:
    """The OSV API `uv audit` asks (querybatch, then each advisory), on loopback: it knows
    one advisory, for the package `vulnerable` at any version. Yields its URL."""

    class Answer(http.server.BaseHTTPRequestHandler):
        def _json(self, value: object) -> None:
            body = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            asked = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            found = {"vulns": [{"id": ADVISORY, "modified": "2026-01-01T00:00:00Z"}]}
            self._json({"results": [found if q["package"]["name"] == vulnerable else {}
                                    for q in asked["queries"]]})  # fmt: skip

        def do_GET(self) -> None:
            ranges = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]
            affected = {"package": {"name": vulnerable, "ecosystem": "PyPI"}, "ranges": ranges}
            advisory = {"id": ADVISORY, "summary": "a test advisory", "affected": [affected]}
            self._json({**advisory, "modified": "2026-01-01T00:00:00Z"})

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


ADVISORY = "GHSA-test-0001"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def check_dvc_round_trip(project: Path, env: dict[str, str] | None = None) -> None:
    """The raw data is the tracked version; push it, drop every local copy, pull it back."""
    tracked = yaml.safe_load((project / f"{RAW}.dvc").read_text())["outs"][0]["md5"]
    assert md5(project / RAW) == tracked
    sh(project, "dvc", "push", env=env)
    (project / RAW).unlink()
    shutil.rmtree(project / ".dvc" / "cache")
    sh(project, "dvc", "pull", f"{RAW}.dvc", env=env)
    assert md5(project / RAW) == tracked
