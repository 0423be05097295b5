"""The team server files: compose validates (docker compose config, compose-spec schema),
refuses to start without secrets, publishes on loopback, pins images, and the systemd unit
runs the same `mlflow server` flags."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SECRETS = {
    "POSTGRES_PASSWORD": "pg",
    "S3_MLFLOW_ACCESS_KEY": "mlflow-key",
    "S3_MLFLOW_SECRET_KEY": "mlflow-secret",
    "S3_DVC_ACCESS_KEY": "dvc-key",
    "S3_DVC_SECRET_KEY": "dvc-secret",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "flask",
    "MLFLOW_AUTH_ADMIN_PASSWORD": "admin",
    "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": "fernet",
}


@pytest.fixture(scope="module")
def deploy(cookies_session) -> Path:
    result = cookies_session.bake()
    assert result.exit_code == 0, result.exception
    return Path(result.project_path) / "deploy" / "tracking-server"


def compose_config(deploy: Path, env_file: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).with_name("docker-compose")
    return subprocess.run(
        [str(binary), "--env-file", str(env_file), "config", "--format", "json"],
        cwd=deploy,
        capture_output=True,
        text=True,
    )


def flags(argv: list[str]) -> set[str]:
    return {arg for arg in argv if arg.startswith("--")}


def test_compose_config_resolves_with_secrets(deploy: Path, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()))
    result = compose_config(deploy, env)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert set(services) == {"postgres", "s3-identities", "seaweedfs", "s3-buckets", "mlflow"}
    command = services["mlflow"]["command"]
    assert command[:2] == ["mlflow", "server"]
    assert "postgresql://mlflow:pg@postgres:5432/mlflow" in command
    assert {"--serve-artifacts", "--artifacts-destination", "--allowed-hosts"} <= flags(command)
    assert command[command.index("--app-name") + 1] == "basic-auth"
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes beyond loopback"
    conditions = {k: v["condition"] for k, v in services["mlflow"]["depends_on"].items()}
    assert conditions == {
        "postgres": "service_healthy",
        "s3-buckets": "service_completed_successfully",
    }
    assert all("healthcheck" in services[n] for n in ("postgres", "seaweedfs", "mlflow"))
    # The object store starts only with its identities written: it never serves anonymously.
    store = services["seaweedfs"]
    assert store["depends_on"]["s3-identities"]["condition"] == "service_completed_successfully"
    assert "-s3.config=/config/s3.json" in store["command"]
    # Its master, volume server and filer (no credentials) listen on its loopback only; the
    # bucket job reaches the master there, through the store's network namespace.
    assert {"-ip.bind=127.0.0.1", "-s3.ip.bind=0.0.0.0"} <= set(store["command"])
    assert services["s3-buckets"]["network_mode"] == "service:seaweedfs"
    assert "-master=127.0.0.1:9333" in " ".join(services["s3-buckets"]["entrypoint"])
    # The MLflow server holds the `mlflow` identity's keys, never the DVC identity's.
    environment = services["mlflow"]["environment"]
    assert (environment["AWS_ACCESS_KEY_ID"], environment["AWS_SECRET_ACCESS_KEY"]) == (
        "mlflow-key",
        "mlflow-secret",
    )
    assert "dvc-key" not in json.dumps(services["mlflow"])


def test_compose_refuses_the_example_env(deploy: Path) -> None:
    """`.env.example` ships without working passwords: copying it is not enough."""
    result = compose_config(deploy, deploy / ".env.example")
    assert result.returncode != 0
    for name in ("POSTGRES_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "S3_MLFLOW_SECRET_KEY"):
        assert f"required variable {name} is missing a value" in result.stderr


def test_no_default_password_anywhere(deploy: Path) -> None:
    """Every secret of the example files is empty: nothing works until someone sets it."""
    for example in (".env.example", "mlflow.env.example"):
        for line in (deploy / example).read_text().splitlines():
            name, _, value = line.partition("=")
            if line.startswith("#") or not value:
                continue
            secret = any(word in name for word in ("PASSWORD", "SECRET", "KEY", "STORE_URI"))
            assert not secret, f"{example}: {name} ships a value"
    text = "".join(path.read_text() for path in deploy.iterdir())
    assert "CHANGE_ME" not in text and "minioadmin" not in text


def test_compose_spec_schema(deploy: Path) -> None:
    binary = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(binary), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        cwd=deploy,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_and_server_packages_are_pinned(deploy: Path) -> None:
    services = yaml.safe_load((deploy / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        if "image" in service:
            tag = service["image"].rsplit(":", 1)[-1]
            assert tag not in ("latest", service["image"]), f"{name} image is not pinned"
    dockerfile = (deploy / "Dockerfile").read_text()
    for package in ("mlflow[auth]", "psycopg[binary]", "boto3"):
        assert re.search(rf'"{re.escape(package)}==[0-9.]+"', dockerfile), package
    assert "CMD" not in dockerfile and "ENTRYPOINT" not in dockerfile  # compose gives the command


def test_systemd_unit_runs_the_same_server(deploy: Path) -> None:
    unit = (deploy / "mlflow.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    compose = yaml.safe_load((deploy / "docker-compose.yml").read_text())
    command = [str(arg) for arg in compose["services"]["mlflow"]["command"]]
    assert Path(argv[0]).name == "mlflow" and argv[1] == "server"
    assert flags(argv) == flags(command)
    assert argv[argv.index("--app-name") + 1] == "basic-auth"
    env_example = (deploy / "mlflow.env.example").read_text()
    assert "MLFLOW_HOST=127.0.0.1" in env_example
    used = set(re.findall(r"\$\{(\w+)\}", exec_start))
    assert used <= {line.split("=")[0] for line in env_example.splitlines() if "=" in line}


def keys(env_file: Path) -> set[str]:
    lines = env_file.read_text().splitlines()
    return {line.split("=")[0] for line in lines if "=" in line and not line.startswith("#")}


def test_env_examples_name_every_variable_the_server_needs(deploy: Path) -> None:
    text = (deploy / "docker-compose.yml").read_text()
    assert set(re.findall(r"\$\{(\w+):\?", text)) <= keys(deploy / ".env.example")
    environment = yaml.safe_load(text)["services"]["mlflow"]["environment"]
    assert set(environment) <= keys(deploy / "mlflow.env.example")  # the systemd unit's


def test_env_files_are_ignored(deploy: Path) -> None:
    project = deploy.parent.parent
    ignored = subprocess.run(
        ["git", "check-ignore", "deploy/tracking-server/.env"], cwd=project, capture_output=True
    )
    assert ignored.returncode == 0
    tracked = subprocess.run(
        ["git", "ls-files", "deploy/tracking-server"], cwd=project, capture_output=True, text=True
    ).stdout.split()
    assert "deploy/tracking-server/.env.example" in tracked
