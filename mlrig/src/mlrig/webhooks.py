"""MLflow webhook -> GitHub `repository_dispatch` bridge, so registry events start promote.yml.

MLflow (SQL-backed server) POSTs `model_version.created` / `model_version_alias.created`
events, signed `X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`. The
receiver (Starlette on uvicorn) forwards an event only when it is signed with the shared
secret, fresh, not seen before, about this project's model and a well-formed version; every
other request gets a 4xx answer and nothing is forwarded:

  401 unsigned, forged or stale    408 body too slow    411 no Content-Length
  413 body too large               400 not a JSON object    422 another model, a bad field
  409 a delivery id already forwarded (replay)    204 an event it does not forward
  202 forwarded    502 GitHub refused (the id is released: MLflow may retry)
  503 `max_concurrent` dispatches already under way, or the state file cannot be written

Every connection is closed `connection_lifetime_s` after it opened (a client that connects and
sends nothing, or a byte at a time, holds nothing for long), one over `max_connections` at once,
and a body must arrive within `read_timeout_s`. The ids it forwarded are kept in the file
`state` (replaced whole on each change), so a restart does not reopen the replay window; when
that file cannot be written, nothing is forwarded (503). One receiver process per file.
`GET /health` answers 200.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .commands import Command
from .config import ConfigError
from .errors import ProjectError
from .names import VERSION_RE

if TYPE_CHECKING:
    from .project import Project
    from .tracking.store import Tracking

log = logging.getLogger(__name__)

EVENTS = ("model_version.created", "model_version_alias.created")
DISPATCH_TYPE = "mlflow-model-version"
MAX_AGE_S = 300  # reject deliveries older than this (and remember ids twice as long)


class SignatureError(ValueError):
    """The delivery is not signed with the shared secret, or is too old."""


class InvalidEvent(ValueError):
    """A signed event this receiver does not forward as it is (422)."""


def register(tracking: Tracking, url: str, secret: str, name: str) -> str:
    """Create (or update) the webhook on the tracking server; return its id."""
    client = tracking.client
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


def to_dispatch(event: Mapping[str, Any], model_name: str, alias: str) -> dict[str, Any] | None:
    """The repository_dispatch body for a new version or a new `alias` of `model_name`; None
    for an event that is not forwarded."""
    kind = f"{event.get('entity')}.{event.get('action')}"
    if kind not in EVENTS:
        return None
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise InvalidEvent("the event has no data object")
    name, version = data.get("name"), str(data.get("version"))
    if name != model_name:
        raise InvalidEvent(f"model {str(name)[:100]!r} is not this project's model")
    if not VERSION_RE.match(version):
        raise InvalidEvent(f"version {version[:20]!r} is not a version number")
    if kind == EVENTS[1] and data.get("alias") != alias:
        return None
    payload = {"model_name": name, "model_version": version, "trigger": kind}
    return {"event_type": DISPATCH_TYPE, "client_payload": payload}


def dispatch(
    body: dict[str, Any], repository: str, token: str, api_url: str, timeout_s: float = 10
) -> int:
    """POST the dispatch to GitHub; return the HTTP status (204 on success, 503 when GitHub
    is unreachable)."""
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
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError as err:
        log.warning("GitHub unreachable: %s", err)
        return 503


@dataclass(frozen=True)
class Receiver:
    secret: str
    model_name: str
    alias: str
    repository: str
    token: str
    api_url: str = "https://api.github.com"
    max_body: int = 64 * 1024
    read_timeout_s: float = 10.0
    connection_lifetime_s: float = 30.0
    max_concurrent: int = 32
    max_connections: int = 512
    state: Path = Path(".webhook-deliveries.json")


class Deliveries:
    """Delivery ids claimed in the last `ttl_s` seconds, kept in the file `path`: a replayed
    one is refused, before and after a restart."""

    def __init__(self, ttl_s: float, path: Path) -> None:
        self.ttl_s, self.path = ttl_s, path
        try:
            self.seen: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}
            if not isinstance(self.seen, dict) or not all(
                isinstance(at, int | float) for at in self.seen.values()
            ):
                raise ValueError("not a mapping of delivery ids to times")
        except (OSError, ValueError) as error:
            raise ProjectError(
                f"cannot read the receiver's state {path} ({error}); it holds only the ids of "
                f"deliveries forwarded in the last {ttl_s:.0f} s: delete it to start afresh"
            ) from error

    def claim(self, delivery_id: str) -> bool:
        """True, and recorded, for an id not seen within `ttl_s`; OSError when the record
        cannot be written (then the id is not claimed)."""
        now = time.time()
        seen = {key: at for key, at in self.seen.items() if now - at < self.ttl_s}
        if delivery_id in seen:
            return False
        self._write({**seen, delivery_id: now})
        return True

    def release(self, delivery_id: str) -> None:
        self._write({key: at for key, at in self.seen.items() if key != delivery_id})

    def _write(self, seen: dict[str, float]) -> None:
        written = self.path.with_name(f"{self.path.name}.tmp")
        written.write_text(json.dumps(seen))
        os.replace(written, self.path)
        self.seen = seen


class TooLarge(ValueError):
    pass


def application(receiver: Receiver) -> Any:
    """The receiver's ASGI app (one route: POST /)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    deliveries = Deliveries(2 * MAX_AGE_S, receiver.state)
    dispatching = asyncio.Semaphore(receiver.max_concurrent)

    async def capped_body(request: Request) -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > receiver.max_body:
                raise TooLarge
        return bytes(body)

    async def receive(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():
            return Response(status_code=411)
        if int(declared) > receiver.max_body:
            return Response(status_code=413)
        try:
            body = await asyncio.wait_for(capped_body(request), receiver.read_timeout_s)
            verify(receiver.secret, request.headers, body)
            event = json.loads(body)
            if not isinstance(event, dict):
                raise ValueError("not a JSON object")
            forwarded = to_dispatch(event, receiver.model_name, receiver.alias)
        except TimeoutError:
            return Response(status_code=408)
        except TooLarge:
            return Response(status_code=413)
        except SignatureError as err:
            log.warning("rejected delivery: %s", err)
            return Response(status_code=401)
        except InvalidEvent as err:
            log.warning("refused event: %s", err)
            return Response(str(err), status_code=422)
        except ValueError:
            return Response("the body is not a JSON object", status_code=400)
        if forwarded is None:
            return Response(status_code=204)
        delivery_id = request.headers["X-MLflow-Delivery-Id"]
        if dispatching.locked():
            return Response(status_code=503)
        try:
            if not deliveries.claim(delivery_id):
                return Response("delivery already forwarded", status_code=409)
        except OSError as error:
            log.error("cannot record delivery %s in %s: %s", delivery_id, receiver.state, error)
            return Response(status_code=503)
        async with dispatching:
            status = await run_in_threadpool(
                dispatch, forwarded, receiver.repository, receiver.token, receiver.api_url
            )
        log.info("dispatched %s -> GitHub %s", forwarded["client_payload"], status)
        if status != 204:
            with contextlib.suppress(OSError):  # kept: MLflow's retry is then refused (409)
                deliveries.release(delivery_id)
            return Response(status_code=502)
        return Response(status_code=202)

    async def health(request: Request) -> Response:
        return Response("ok")

    return Starlette(
        routes=[Route("/", receive, methods=["POST"]), Route("/health", health, methods=["GET"])]
    )


def serve(receiver: Receiver, host: str, port: int) -> None:
    """Run the receiver until interrupted."""
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Bounded(H11Protocol):
        """uvicorn's h11 protocol with a lifetime per connection (uvicorn times out only idle
        keep-alive connections: one that never sends a whole request would stay open) and a
        cap on open connections (uvicorn's limit_concurrency answers 503 only to a request)."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > receiver.max_connections:
                transport.close()  # over the cap: closed before anything is read
                return
            self.loop.call_later(receiver.connection_lifetime_s, transport.close)

    config = uvicorn.Config(
        application(receiver),
        host=host,
        port=port,
        http=Bounded,
        timeout_keep_alive=2,
        log_level="warning",
    )
    uvicorn.Server(config).run()


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"set {name} in the environment (never on the command line)")
    return value


def _register(project: Project, options: argparse.Namespace) -> int:
    from .tracking.store import Tracking

    cfg = project.load_params()
    name = options.name or f"{cfg.project}-promotion"
    hook = register(
        Tracking.connect(cfg, project.root), options.url, _env("MLFLOW_WEBHOOK_SECRET"), name
    )
    print(f"Webhook {name!r} ({hook}) -> {options.url}")
    return 0


def receive(options: argparse.Namespace, model_name: str, alias: str) -> int:
    """Serve the receiver for `model_name`'s events (secrets from the environment)."""
    receiver = Receiver(
        secret=_env("MLFLOW_WEBHOOK_SECRET"),
        model_name=model_name,
        alias=alias,
        repository=_env("GITHUB_REPOSITORY"),
        token=_env("GITHUB_TOKEN"),
        api_url=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        max_body=options.max_body,
        read_timeout_s=options.read_timeout,
        connection_lifetime_s=options.connection_lifetime,
        max_concurrent=options.max_concurrent,
        max_connections=options.max_connections,
        state=options.state,
    )
    print(f"Receiving MLflow webhooks on http://{options.host}:{options.port}/", flush=True)
    serve(receiver, options.host, options.port)
    return 0


def _receive(project: Project, options: argparse.Namespace) -> int:
    registry = project.load_params().registry
    return receive(options, registry.model_name, registry.alias)


def _register_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="where the receiver listens")
    parser.add_argument("--name", help="the webhook's name (default: <project>-promotion)")


def receive_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Receiver("", "", "", "", "")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--max-body", type=int, default=defaults.max_body, help="bytes")
    parser.add_argument("--read-timeout", type=float, default=defaults.read_timeout_s)
    parser.add_argument("--connection-lifetime", type=float, default=defaults.connection_lifetime_s)
    parser.add_argument("--max-concurrent", type=int, default=defaults.max_concurrent)
    parser.add_argument("--max-connections", type=int, default=defaults.max_connections)
    parser.add_argument(
        "--state", type=Path, default=defaults.state, help="the forwarded ids (one receiver)"
    )


COMMANDS = {
    "webhook-register": Command(
        "register the registry webhook (secret: MLFLOW_WEBHOOK_SECRET)",
        _register,
        _register_arguments,
    ),
    "webhook-receive": Command(
        "verify MLflow webhooks and dispatch promote.yml on GitHub", _receive, receive_arguments
    ),
}


def main(argv: list[str] | None = None) -> int:
    """`mlrig-webhooks`: the receiver on its own, for a registered model named on the command
    line (the project's `webhook-receive` reads it from params.yaml)."""
    from .commands import run_command

    parser = argparse.ArgumentParser(
        prog="mlrig-webhooks", description=COMMANDS["webhook-receive"].help
    )
    parser.add_argument("--model-name", required=True, help="the registered model to forward")
    parser.add_argument("--alias", default="challenger", help="the alias whose moves forward")
    receive_arguments(parser)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_command(lambda: receive(options, options.model_name, options.alias))
