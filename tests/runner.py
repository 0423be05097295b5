"""GitHub workflows of a baked project, executed on this machine as a runner would: `act` in
host mode (no containers), the workspace a fresh clone of the project's git remote, secrets,
variables and event payloads passed as GitHub passes them, and each third-party action
replaced by its stand-in in tests/actions (actions/checkout is act's own copy of the clone)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from conftest import TEMPLATE

ACT = Path(sys.executable).with_name("act")
TEST_SETTINGS = ("MLFLOW_", "AWS_", "DVC_", "GITHUB_", "PYTEST_")
STAND_INS = TEMPLATE / "tests" / "actions"


def stand_ins(workflow: Path) -> list[str]:
    """`--local-repository` flags: every third-party action the workflow uses, by its pinned
    ref, to its stand-in (a workflow using an action without one fails here, by name)."""
    flags: set[str] = set()
    for job in yaml.safe_load(workflow.read_text())["jobs"].values():
        for step in job.get("steps", []):
            uses = step.get("uses", "")
            action = uses.partition("@")[0]
            if not uses or uses.startswith("./") or action == "actions/checkout":
                continue
            folder = STAND_INS / action
            assert (folder / "action.yml").is_file(), f"no stand-in in tests/actions for {uses}"
            flags.add(f"{uses}={folder}")
    return [flag for value in sorted(flags) for flag in ("--local-repository", value)]


def outcome(output: str, job: str) -> str | None:
    """How act says `<workflow name>/<job id>` ended: "succeeded", "failed", or None when the
    job never ran (act pads the names of jobs that run side by side)."""
    ends = re.findall(rf"^\[{re.escape(job)} *\] 🏁  Job (succeeded|failed)$", output, re.M)
    return ends[-1] if ends else None


@dataclass
class Runner:
    """A runner for one clone of a project: `run` executes one workflow for one event."""

    workspace: Path  # the clone the workflows run in (act copies it into each job)
    scratch: Path  # act's caches and host workspaces, the event files, the stand-ins' output

    @classmethod
    def clone(
        cls, remote: str, scratch: Path, branch: str = "main", repository: str = "acme/project"
    ) -> Runner:
        """A fresh clone of `branch`; its origin then names the GitHub `repository` (act
        takes github.repository from there)."""
        scratch.mkdir(parents=True, exist_ok=True)
        workspace = scratch / "checkout"
        git = ["git", "-C", str(workspace)]
        subprocess.run(
            ["git", "clone", "--quiet", "--branch", branch, remote, str(workspace)], check=True
        )
        url = f"https://github.com/{repository}.git"
        subprocess.run([*git, "remote", "set-url", "origin", url], check=True)
        return cls(workspace, scratch)

    @property
    def out(self) -> Path:
        return self.scratch / "out"

    def actions_log(self) -> str:
        log = self.out / "actions.log"
        return log.read_text() if log.exists() else ""

    def run(
        self,
        event: str,
        workflow: str,
        payload: dict[str, object] | None = None,
        secrets: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        timeout: int = 1500,
    ) -> subprocess.CompletedProcess[str]:
        """`act <event>` for .github/workflows/<workflow>: `secrets` as the repository's,
        `env` as the runner machine's environment; its output (stdout and stderr)."""
        self.out.mkdir(parents=True, exist_ok=True)
        event_file = self.scratch / f"{event}.json"
        event_file.write_text(json.dumps(payload or {}))
        path = self.workspace / ".github" / "workflows" / workflow
        command = [
            str(ACT), event, "--workflows", str(path), "--eventpath", str(event_file),
            "--platform", "ubuntu-latest=-self-hosted", "--container-daemon-socket", "-",
            "--action-cache-path", str(self.scratch / "act"), "--action-offline-mode",
            *stand_ins(path),
            "--env", f"STANDIN_OUT={self.out}",
            "--env", f"STANDIN_UV={shutil.which('uv') or Path(sys.executable).with_name('uv')}",
        ]  # fmt: skip
        listed = self.scratch / "secrets"  # a file only we can read: no secret in `ps`
        descriptor = os.open(listed, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.writelines(f"{k}={json.dumps(v)}\n" for k, v in (secrets or {}).items())
        command += ["--secret-file", str(listed)]
        for name, value in (env or {}).items():
            command += ["--env", f"{name}={value}"]
        # Jobs in host mode see act's own environment: this machine's (its certificates and
        # package index settings too), without the test run's own settings; Python may write
        # bytecode, as on a GitHub runner (the workflows' BYTECODE=0 relies on it).
        host = {k: v for k, v in os.environ.items() if not k.startswith(TEST_SETTINGS)}
        host.pop("VIRTUAL_ENV", None)
        host.pop("PYTHONDONTWRITEBYTECODE", None)
        host["MLFLOW_DISABLE_TELEMETRY"] = "true"
        try:
            done = subprocess.run(
                command, cwd=self.workspace, env=host, capture_output=True, text=True,
                timeout=timeout,
            )  # fmt: skip
        finally:
            listed.unlink()
        (self.scratch / f"act-{event}.log").write_text(done.stdout + done.stderr)  # to read
        return done
