"""Helpers for a project's tests (and the library's own) that run the real servers: an MLflow
sqlite store made in milliseconds, servers on loopback stopped by their process group, and a
team topology -- PostgreSQL, an S3 emulator enforcing one identity per bucket, and an
authenticating `mlflow server` -- all on 127.0.0.1.

They need what the tests need (PostgreSQL's binaries on PATH; moto, boto3 and psycopg for the
topology): nothing here is imported by the library's commands.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from .processes import group_options, stop_group

SECRETS = {
    "POSTGRES_PASSWORD": "pg-test-password",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "flask-test-secret",
    "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-test-password",
}
# s3_identities' unsigned requests (2 users, 2 keys, 2 policies, 2 buckets): every later
# request must be signed by a known user and allowed by its policy.
SETUP_ACTIONS = 8


def forget_connection() -> None:
    """Undo what `Tracking.open` sets in MLflow's process state (its tracking and registry
    URIs), so that the next test's MLFLOW_TRACKING_URI decides where it connects."""
    import mlflow

    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@functools.cache
def _migrated_store() -> bytes:
    """An MLflow sqlite store at the current schema and without experiments. Migrating a new
    database takes ~2 s; copying this one and opening it, ~60 ms."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "mlflow.db"
        SqlAlchemyStore(f"sqlite:///{database}", Path(folder).as_uri()).engine.dispose()
        connection = sqlite3.connect(database)
        with connection:
            connection.execute("DELETE FROM experiments")
        connection.close()
        return database.read_bytes()


def new_store(database: Path, artifacts: str | None = None) -> str:
    """A store at `database` as MLflow makes a new one, its Default experiment (id 0) under
    `artifacts` (a URI), created now, or else by whoever opens it first; returns its URI."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    database.write_bytes(_migrated_store())
    uri = f"sqlite:///{database}"
    if artifacts is not None:
        SqlAlchemyStore(uri, artifacts).engine.dispose()
    return uri


def mlflow_server(folder: Path, port: int) -> list[str]:
    """`mlflow server` on loopback with a sqlite store (new, unless `folder` holds one) and
    artifacts in `folder`: one worker and no job runner (MLflow's GenAI jobs), which halves
    its start-up."""
    store = folder / "server.db"
    if not store.exists():
        new_store(store)
    return [
        "env", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{store}",
        "--artifacts-destination", str(folder / "server-artifacts"), "--workers", "1",
    ]  # fmt: skip


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    """Poll `url` until it answers 200; fail with the server's log if it dies or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited:\n{log.read_text()[-5000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s:\n{log.read_text()[-5000:]}")


@contextmanager
def background(
    command: list[str], url: str, env: dict[str, str], cwd: Path
) -> Iterator[subprocess.Popen]:
    """Start a server on loopback, wait until `url` answers, stop it (its process group).

    The venv's bin folder goes first on PATH: MLflow's servers exec `uvicorn` by name.
    The server logs to a file: a pipe nobody reads fills up and blocks a busy server.
    """
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    log = Path(tempfile.mkstemp(prefix="server-", suffix=".log")[1])
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, "PATH": path, **env}, stdout=output,
            stderr=subprocess.STDOUT, **group_options(),
        )  # fmt: skip
    try:
        wait_http(url, process, log)
        yield process
    finally:
        stop_group(process)
        log.unlink(missing_ok=True)


def kill(server: subprocess.Popen) -> None:
    """SIGKILL a server started by `background` (its whole process group)."""
    stop_group(server, force=True)


def topology_unavailable() -> str | None:
    """Why the team topology cannot start here (None when it can)."""
    missing = [tool for tool in ("initdb", "pg_ctl", "psql") if shutil.which(tool) is None]
    if missing:
        return f"PostgreSQL binaries not on PATH: {missing}"
    if not Path(sys.executable).with_name("moto_server").exists():
        return "moto's server is not installed (moto[server])"
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


def s3_identities(endpoint: str) -> dict[str, dict[str, str]]:
    """One identity per user of the object store (`mlflow`, `dvc`), allowed its own bucket
    only, and the buckets. Returns each identity's environment."""
    import boto3

    region = {"region_name": "us-east-1", "endpoint_url": endpoint}
    setup = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup", **region}
    iam, s3 = boto3.client("iam", **setup), boto3.client("s3", **setup)
    identities = {}
    for bucket in ("mlflow", "dvc"):
        iam.create_user(UserName=bucket)
        key = iam.create_access_key(UserName=bucket)["AccessKey"]
        resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
        statement = {"Effect": "Allow", "Action": "s3:*", "Resource": resources}
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        iam.put_user_policy(UserName=bucket, PolicyName=bucket, PolicyDocument=json.dumps(policy))
        s3.create_bucket(Bucket=bucket)
        identities[bucket] = {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    return identities


def bucket_keys(endpoint: str, bucket: str, identity: dict[str, str]) -> list[str]:
    """Every key of `bucket`, listed as `identity`."""
    import boto3

    api = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=identity["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=identity["AWS_SECRET_ACCESS_KEY"],
        region_name=identity["AWS_DEFAULT_REGION"],
    )
    pages = api.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@dataclass(frozen=True)
class Services:
    """What the tracking server is started against: PostgreSQL's port, the S3 endpoint, the
    server's own port, the secrets and the server's S3 identity."""

    postgres_port: int
    s3_endpoint: str
    port: int
    secrets: dict[str, str]
    s3_keys: dict[str, str]
    base: Path  # a folder of the topology's own (an auth database, logs)


def authenticating_server(services: Services) -> tuple[list[str], dict[str, str]]:
    """`mlflow server` as a team runs it: PostgreSQL, proxied artifacts in the `mlflow`
    bucket, basic auth (admin's password from the environment, default permission READ)."""
    auth = services.base / "basic_auth.ini"
    auth.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{services.base / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 60\n"  # each request would hash the password again (PBKDF2)
    )
    pg = f"postgresql://mlflow:{services.secrets['POSTGRES_PASSWORD']}@127.0.0.1:"
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
        "--port", str(services.port), "--backend-store-uri", f"{pg}{services.postgres_port}/mlflow",
        "--artifacts-destination", "s3://mlflow/artifacts", "--serve-artifacts",
        "--app-name", "basic-auth", "--allowed-hosts", f"127.0.0.1:{services.port}",
    ]  # fmt: skip
    env = {
        **services.s3_keys,
        "MLFLOW_S3_ENDPOINT_URL": services.s3_endpoint,
        "MLFLOW_AUTH_CONFIG_PATH": str(auth),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": services.secrets["MLFLOW_FLASK_SERVER_SECRET_KEY"],
        "MLFLOW_AUTH_ADMIN_PASSWORD": services.secrets["MLFLOW_AUTH_ADMIN_PASSWORD"],
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    return command, env


@dataclass
class Topology:
    uri: str  # what clients use
    s3_endpoint: str
    s3_env: dict[str, str]  # the DVC identity's credentials (its bucket only)
    server_s3_env: dict[str, str]  # the MLflow server's identity (its bucket only)
    username: str
    password: str
    server: subprocess.Popen  # the mlflow server's process (its own process group)
    # Start the mlflow server again (same command, port and stores), e.g. after killing it.
    relaunch: Callable[[], AbstractContextManager[subprocess.Popen]]


@contextmanager
def team_server(
    base: Path,
    server: Callable[[Services], tuple[list[str], dict[str, str]]] = authenticating_server,
) -> Iterator[Topology]:
    """PostgreSQL + moto + the `mlflow server` that `server` describes, all on loopback."""
    base.mkdir(parents=True, exist_ok=True)
    s3_port, port = free_port(), free_port()
    s3 = f"http://127.0.0.1:{s3_port}"
    moto_server = str(Path(sys.executable).with_name("moto_server"))
    moto = [moto_server, "-H", "127.0.0.1", "-p", str(s3_port)]
    enforcing = {"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_ACTIONS)}
    with postgres() as pg_port, background(moto, f"{s3}/moto-api/", enforcing, base):
        keys = s3_identities(s3)
        services = Services(pg_port, s3, port, dict(SECRETS), keys["mlflow"], base)
        command, env = server(services)
        uri = f"http://127.0.0.1:{port}"

        def launch() -> AbstractContextManager[subprocess.Popen]:
            return background(command, f"{uri}/health", env, base)

        with launch() as process:
            password = SECRETS["MLFLOW_AUTH_ADMIN_PASSWORD"]
            yield Topology(uri, s3, keys["dvc"], keys["mlflow"], "admin", password, process, launch)
