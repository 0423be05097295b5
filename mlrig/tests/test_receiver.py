"""The webhook receiver's request handler (its ASGI app), called directly: no uvicorn, no
socket to it. Each bad request gets its answer and forwards nothing; a good one is forwarded
once (GitHub is a stand-in on loopback)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_webhooks import SECRET, GitHubStandIn, event, github

from mlrig import ProjectError
from mlrig.webhooks import Receiver, application, sign

__all__ = ["github"]  # the fixture, shared with test_webhooks


async def request(app: object, body: bytes, headers: dict[str, str]) -> int:
    """POST `body` to the app as an ASGI server would, in pieces of 1000 bytes; its status."""
    pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]
    messages = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8787),
    }  # fmt: skip
    await app(scope, receive, send)  # type: ignore[operator]
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def signed(body: bytes, delivery_id: str) -> dict[str, str]:
    now = str(int(time.time()))
    return {
        "Content-Length": str(len(body)),
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": now,
        "X-MLflow-Signature": sign(SECRET, delivery_id, now, body),
    }


def receiver(github: str, state: Path) -> Receiver:
    return Receiver(
        SECRET, "demo-model", "challenger", "org/repo", "token", github, 4096, state=state
    )


@pytest.fixture
def app(github: str, tmp_path: Path) -> Iterator[object]:
    yield application(receiver(github, tmp_path / "deliveries.json"))


def answers(app: object, *calls: tuple[bytes, dict[str, str]]) -> list[int]:
    async def all_of() -> list[int]:
        return [await request(app, body, headers) for body, headers in calls]

    return asyncio.run(all_of())


def test_each_bad_request_gets_its_answer_without_a_server(app: object) -> None:
    good = json.dumps(event()).encode()
    unsigned = {**signed(good, "u"), "X-MLflow-Signature": "v1,forged"}
    assert answers(
        app,
        (good, unsigned),
        (b"not json", signed(b"not json", "n")),
        (b"[1]", signed(b"[1]", "l")),
        (json.dumps(event("other")).encode(), signed(json.dumps(event("other")).encode(), "o")),
        (
            json.dumps(event(version="0")).encode(),
            signed(json.dumps(event(version="0")).encode(), "v"),
        ),
        (good, {k: v for k, v in signed(good, "c").items() if k != "Content-Length"}),
        (good + b" " * 5000, signed(good + b" " * 5000, "big")),
    ) == [401, 400, 400, 422, 422, 411, 413]
    assert GitHubStandIn.dispatched == []


def test_a_delivery_is_forwarded_once_and_an_event_of_no_interest_is_not(app: object) -> None:
    good = json.dumps(event()).encode()
    alias = json.dumps(
        {"entity": "model_version_alias", "action": "created",
         "data": {"name": "demo-model", "version": "3", "alias": "champion"}}
    ).encode()  # fmt: skip
    assert answers(
        app, (good, signed(good, "d1")), (good, signed(good, "d1")), (alias, signed(alias, "a"))
    ) == [202, 409, 204]
    ((path, body),) = GitHubStandIn.dispatched
    assert path == "/repos/org/repo/dispatches"
    assert body["client_payload"] == {
        "model_name": "demo-model", "model_version": "3", "trigger": "model_version.created"
    }  # fmt: skip


def test_a_replay_after_a_restart_is_refused(github: str, tmp_path: Path) -> None:
    """The forwarded ids outlive the process: a new receiver on the same state file refuses
    a delivery the old one forwarded, while a new one goes through."""
    state = tmp_path / "deliveries.json"
    good = json.dumps(event()).encode()
    assert answers(application(receiver(github, state)), (good, signed(good, "d1"))) == [202]
    restarted = application(receiver(github, state))
    assert answers(restarted, (good, signed(good, "d1")), (good, signed(good, "d2"))) == [409, 202]
    assert len(GitHubStandIn.dispatched) == 2


def test_nothing_is_forwarded_when_the_state_cannot_be_written(github: str, tmp_path: Path) -> None:
    """A delivery that could not be recorded could be replayed after a restart: refused 503
    (MLflow retries), nothing forwarded."""
    state = tmp_path / "gone" / "deliveries.json"  # its folder does not exist
    good = json.dumps(event()).encode()
    assert answers(application(receiver(github, state)), (good, signed(good, "d1"))) == [503]
    assert GitHubStandIn.dispatched == []


@pytest.mark.parametrize("content", ["{not json", "[]", '{"a-delivery": "yesterday"}'])
def test_an_unreadable_state_file_stops_the_receiver_with_the_fix(
    github: str, tmp_path: Path, content: str
) -> None:
    state = tmp_path / "deliveries.json"
    state.write_text(content)
    with pytest.raises(ProjectError, match="delete it to start afresh"):
        application(receiver(github, state))
