"""Webhook bridge against a real `mlflow server` on loopback: registry event -> signed delivery
-> receiver -> GitHub repository_dispatch (a local stand-in for the GitHub API)."""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import mlflow
import pytest
from conftest import background, free_port

from {{ cookiecutter.package_name }} import pipeline, webhooks
from {{ cookiecutter.package_name }}.config import compose, from_container

pytestmark = pytest.mark.e2e
SECRET = "test-webhook-secret"


class GitHubStandIn(BaseHTTPRequestHandler):
    dispatched: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.dispatched.append((self.path, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def serve(server: ThreadingHTTPServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


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


def test_registry_events_dispatch_the_promotion_workflow(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    GitHubStandIn.dispatched = []
    github = ThreadingHTTPServer(("127.0.0.1", 0), GitHubStandIn)
    serve(github)
    receiver = webhooks.make_server(
        "127.0.0.1", 0, SECRET, "challenger", "org/repo", "gh-token",
        f"http://127.0.0.1:{github.server_port}",
    )  # fmt: skip
    serve(receiver)
    receiver_url = f"http://127.0.0.1:{receiver.server_port}/"

    port = free_port()
    server = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{workspace / 'server.db'}",
        "--artifacts-destination", str(workspace / "server-artifacts"),
    ]  # fmt: skip
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
        mlflow.set_tracking_uri(uri)
        hook_id = webhooks.register(receiver_url, SECRET, "promotion")
        assert webhooks.register(receiver_url, SECRET, "promotion") == hook_id  # idempotent

        cfg = from_container(compose(["model.n_estimators=10", "model.early_stopping_rounds=0"]))
        summary = pipeline.run_job(cfg)

        deadline = time.monotonic() + 30
        while len(GitHubStandIn.dispatched) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)

    receiver.shutdown()
    github.shutdown()
    triggers = set()
    for path, body in GitHubStandIn.dispatched:
        assert path == "/repos/org/repo/dispatches"
        assert body["event_type"] == "mlflow-model-version"
        assert body["client_payload"]["model_name"] == cfg.registry.model_name
        assert body["client_payload"]["model_version"] == summary.version
        triggers.add(body["client_payload"]["trigger"])
    assert triggers == {"model_version.created", "model_version_alias.created"}


def test_receiver_rejects_unsigned_deliveries() -> None:
    GitHubStandIn.dispatched = []
    receiver = webhooks.make_server(
        "127.0.0.1", 0, SECRET, "challenger", "org/repo", "t", "http://127.0.0.1:9"
    )
    serve(receiver)
    request = urllib.request.Request(
        f"http://127.0.0.1:{receiver.server_port}/",
        data=b'{"entity": "model_version", "action": "created"}',
        headers={"X-MLflow-Signature": "v1,forged", "X-MLflow-Delivery-Id": "x",
                 "X-MLflow-Timestamp": str(int(time.time()))},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    receiver.shutdown()
    assert refused.value.code == 401
    assert GitHubStandIn.dispatched == []
