"""Run with a baked project's own Python (its test groups installed): start a team topology
(mlrig.testing: PostgreSQL, S3 emulator, basic-auth `mlflow server`, all on loopback), print
one JSON line with what clients need, and keep it up until standard input closes.

    .venv/bin/python <template>/tests/topology.py <folder for the servers' files>
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from mlrig.testing import team_server

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers on the way out
    with team_server(Path(sys.argv[1])) as topology:
        described = {
            "uri": topology.uri,
            "username": topology.username,
            "password": topology.password,
            "s3_endpoint": topology.s3_endpoint,
            "dvc": topology.s3_env,
        }
        print(json.dumps(described), flush=True)
        sys.stdin.read()  # until the test closes it
