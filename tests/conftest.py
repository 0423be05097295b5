"""Shared helpers for the template's tests."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

TEMPLATE = Path(__file__).resolve().parents[1]
DEFAULT_SLUG = "tumor-classifier"


@pytest.fixture(autouse=True, scope="session")
def _git_identity() -> None:
    """Baked projects get a first commit; CI machines may have no git identity."""
    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "ml-template tests")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "tests@ml-template.invalid")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


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
