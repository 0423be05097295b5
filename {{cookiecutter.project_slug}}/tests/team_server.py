"""The compose topology, natively on loopback: PostgreSQL, an S3 emulator (moto) and
`mlflow server` started with the command and environment of deploy/tracking-server's
docker-compose.yml (read from it; only addresses and secrets are swapped for local ones)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from conftest import background, free_port

from {{ cookiecutter.package_name }}.config import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy" / "tracking-server"
VARIABLE = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")
SECRETS = {
    "POSTGRES_PASSWORD": "pg-test-password",
    "MINIO_ROOT_USER": "s3-test-user",
    "MINIO_ROOT_PASSWORD": "s3-test-password",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "flask-test-secret",
    "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-test-password",
    "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
}


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:?message} and ${NAME:-default}."""

    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if values.get(name):
            return values[name]
        if kind == "-":
            return rest
        raise KeyError(f"{name} is required: {rest or 'unset'}")

    return VARIABLE.sub(value, text)


def mlflow_service(values: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The mlflow service's command and environment, interpolated."""
    service = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]["mlflow"]
    command = [interpolate(str(arg), values) for arg in service["command"]]
    env = {k: interpolate(str(v), values) for k, v in service["environment"].items()}
    return command, env


def available() -> str | None:
    """Why the topology cannot start here (None when it can)."""
    missing = [tool for tool in ("initdb", "pg_ctl", "psql") if shutil.which(tool) is None]
    if missing:
        return f"PostgreSQL binaries not on PATH: {missing}"
    if not Path(sys.executable).with_name("moto_server").exists():
        return "the team-test extras are not installed: run `make test`"
    return None


def _as_postgres(command: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server as the postgres user there."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(*command: str) -> None:
    subprocess.run(_as_postgres(list(command)), check=True, capture_output=True)


@contextmanager
def postgres() -> Iterator[int]:
    """A throw-away cluster on loopback with role and database `mlflow`; yields its port.

    Its folder is its own (as root, owned by postgres): pytest's are private to their owner.
    """
    base = Path(tempfile.mkdtemp(prefix="pg-"))
    data, sockets = base / "data", base / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (base, sockets):
            shutil.chown(path, "postgres")
    port = free_port()
    try:
        _run("initdb", "-D", str(data), "--auth=trust", "-U", "postgres")
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
        _run("pg_ctl", "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start")
        try:
            for sql in (
                f"CREATE ROLE mlflow LOGIN PASSWORD '{SECRETS['POSTGRES_PASSWORD']}'",
                "CREATE DATABASE mlflow OWNER mlflow",
            ):
                _run("psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", sql)
            yield port
        finally:
            _run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Topology:
    uri: str  # what clients use
    s3_endpoint: str
    s3_env: dict[str, str]  # credentials only the server and DVC get
    username: str
    password: str
    server: subprocess.Popen  # the mlflow server's process (its own process group)
    # Start the mlflow server again (same command, port and stores), e.g. after killing it.
    relaunch: Callable[[], AbstractContextManager[subprocess.Popen]]


@contextmanager
def team_server(base: Path) -> Iterator[Topology]:
    """PostgreSQL + moto + the compose file's `mlflow server`, all on loopback."""
    base.mkdir(parents=True, exist_ok=True)
    s3_port, port = free_port(), free_port()
    s3 = f"http://127.0.0.1:{s3_port}"
    moto_server = str(Path(sys.executable).with_name("moto_server"))
    moto = [moto_server, "-H", "127.0.0.1", "-p", str(s3_port)]
    s3_env = {
        "AWS_ACCESS_KEY_ID": SECRETS["MINIO_ROOT_USER"],
        "AWS_SECRET_ACCESS_KEY": SECRETS["MINIO_ROOT_PASSWORD"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with postgres() as pg_port, background(moto, f"{s3}/moto-api/", {}, base):
        import boto3

        bucket_api = boto3.client("s3", endpoint_url=s3, **_boto(s3_env))
        for bucket in ("mlflow", "dvc"):  # what the minio-init job does
            bucket_api.create_bucket(Bucket=bucket)

        values = {**SECRETS, "MLFLOW_ALLOWED_HOSTS": f"127.0.0.1:{port},localhost:{port}"}
        command, env = mlflow_service(values)
        local = {"postgres:5432": f"127.0.0.1:{pg_port}", "http://minio:9000": s3}
        command = [_swap(arg, local) for arg in command]
        env = {k: _swap(v, local) for k, v in env.items()}
        command[command.index("--host") + 1] = "127.0.0.1"
        command[command.index("--port") + 1] = str(port)
        auth_ini = base / "basic_auth.ini"
        auth_ini.write_text(
            (DEPLOY / "basic_auth.ini")
            .read_text()
            .replace("sqlite:////var/lib/mlflow/", f"sqlite:///{base}/")
        )
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(auth_ini)
        executable = [sys.executable, "-m", "mlflow", *command[1:]]
        uri = f"http://127.0.0.1:{port}"

        def launch() -> AbstractContextManager[subprocess.Popen]:
            return background(executable, f"{uri}/health", env, base)

        with launch() as server:
            password = SECRETS["MLFLOW_AUTH_ADMIN_PASSWORD"]
            yield Topology(uri, s3, s3_env, "admin", password, server, launch)


def _swap(text: str, addresses: dict[str, str]) -> str:
    for service, local in addresses.items():
        text = text.replace(service, local)
    return text


def _boto(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


def bucket_keys(topology: Topology, bucket: str) -> list[str]:
    import boto3

    api = boto3.client("s3", endpoint_url=topology.s3_endpoint, **_boto(topology.s3_env))
    pages = api.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]
