"""The test helpers' servers: a test run stopped by Ctrl-C (as `make test` stops, with workers)
still stops every server its fixtures started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# A suite whose fixture starts a server with `mlrig.testing.background`, then waits.
SUITE = """
import os, sys, time
from pathlib import Path
import pytest
from mlrig.testing import background, free_port

@pytest.fixture
def server(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with background(command, f"http://127.0.0.1:{port}/", {}, tmp_path) as process:
        Path(os.environ["SERVER_PID"]).write_text(str(process.pid))
        yield

def test_waits(server):
    time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")


def test_ctrl_c_stops_the_servers_a_test_run_started(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(SUITE)
    pid_file = tmp_path / "server.pid"
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", "."],
        cwd=tmp_path, env={**os.environ, "SERVER_PID": str(pid_file)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # even if ignored here
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not pid_file.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pid_file.exists(), run.communicate()[0][-3000:]
    server = int(pid_file.read_text())
    assert alive(server)
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole process group
    output = run.communicate(timeout=60)[0]
    deadline = time.monotonic() + 20
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(server), output[-3000:]
