"""MLflow webhook -> GitHub `repository_dispatch` bridge, so registry events start promote.yml.

MLflow (SQL-backed server) POSTs `model_version.created` / `model_version_alias.created`
events, signed `X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`. The
receiver verifies the signature and its age, then asks GitHub to dispatch
`mlflow-model-version` with the model name and version; promote.yml validates that version.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlflow import MlflowClient

log = logging.getLogger(__name__)

EVENTS = ("model_version.created", "model_version_alias.created")
DISPATCH_TYPE = "mlflow-model-version"
MAX_AGE_S = 300  # reject deliveries older than this (replays)


class SignatureError(ValueError):
    """The delivery is not signed with the shared secret, or is too old."""


def register(url: str, secret: str, name: str) -> str:
    """Create (or update) the webhook on the tracking server; return its id."""
    client = MlflowClient()
    existing = [hook for hook in client.list_webhooks() if hook.name == name]
    if existing:
        hook = client.update_webhook(
            existing[0].webhook_id, url=url, events=list(EVENTS), secret=secret
        )
    else:
        hook = client.create_webhook(name=name, url=url, events=list(EVENTS), secret=secret)
    return hook.webhook_id


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
    """Raise SignatureError unless the delivery is fresh and signed with `secret`."""
    signature = headers.get("X-MLflow-Signature", "")
    delivery_id = headers.get("X-MLflow-Delivery-Id", "")
    timestamp = headers.get("X-MLflow-Timestamp", "")
    if not (signature and delivery_id and timestamp.isdigit()):
        raise SignatureError("missing X-MLflow-Signature, -Delivery-Id or -Timestamp header")
    if abs((now or time.time()) - int(timestamp)) > MAX_AGE_S:
        raise SignatureError("delivery timestamp is too old or in the future")
    if not hmac.compare_digest(signature, sign(secret, delivery_id, timestamp, body)):
        raise SignatureError("signature does not match the shared secret")


def to_dispatch(event: Mapping[str, Any], alias: str) -> dict[str, Any] | None:
    """The repository_dispatch body for a new version or a new `alias`; None to ignore."""
    kind = f"{event.get('entity')}.{event.get('action')}"
    data = event.get("data", {})
    if kind not in EVENTS or (kind == EVENTS[1] and data.get("alias") != alias):
        return None
    return {
        "event_type": DISPATCH_TYPE,
        "client_payload": {
            "model_name": str(data["name"]),
            "model_version": str(data["version"]),
            "trigger": kind,
        },
    }


def dispatch(body: dict[str, Any], repository: str, token: str, api_url: str) -> int:
    """POST the dispatch to GitHub; return the HTTP status (204 on success)."""
    request = urllib.request.Request(  # noqa: S310 (https API URL from configuration)
        f"{api_url.rstrip('/')}/repos/{repository}/dispatches",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def make_server(
    host: str, port: int, secret: str, alias: str, repository: str, token: str, api_url: str
) -> ThreadingHTTPServer:
    """A receiver: verify, translate, forward. Serve it with `.serve_forever()`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                verify(secret, self.headers, body)
            except SignatureError as err:
                log.warning("rejected delivery: %s", err)
                return self._reply(HTTPStatus.UNAUTHORIZED)
            request = to_dispatch(json.loads(body), alias)
            if request is None:
                return self._reply(HTTPStatus.NO_CONTENT)
            status = dispatch(request, repository, token, api_url)
            log.info("dispatched %s -> GitHub %s", request["client_payload"], status)
            self._reply(HTTPStatus.ACCEPTED if status == 204 else HTTPStatus.BAD_GATEWAY)

        def _reply(self, status: HTTPStatus) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return ThreadingHTTPServer((host, port), Handler)
