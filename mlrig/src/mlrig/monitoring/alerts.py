"""Alerts when scoring fails or drifts: a Slack-compatible JSON message to the webhook whose
URL is in the environment (a secret, never in configuration), and, with `monitor.alert.dispatch`,
a GitHub `repository_dispatch` that starts the retraining workflow. Each is tried a bounded
number of times, each try within a timeout; an alert that cannot be delivered is logged and
changes nothing about the scoring's outcome."""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from ..config import AlertConfig

log = logging.getLogger(__name__)
GITHUB_API = "https://api.github.com"


CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")  # user:password@ in a URL


def redacted(text: str) -> str:
    """`text` without the credentials a URL in it carries (an alert leaves the machine)."""
    return CREDENTIALS.sub("***@", text)


def _attempts(what: str, settings: AlertConfig, send: Callable[[], int]) -> bool:
    """Call `send` until it answers 2xx, at most `settings.attempts` times; a 4xx other than
    429 is final (the request itself is wrong), and so is a URL that cannot be sent to."""
    for attempt in range(1, settings.attempts + 1):
        try:
            status = send()
        except Exception as error:  # a malformed URL: no attempt can succeed
            log.warning("%s: not sent (%s)", what, type(error).__name__)
            return False
        if 200 <= status < 300:
            return True
        final = 400 <= status < 500 and status != 429
        log.warning("%s: answered %s (attempt %d/%d)", what, status, attempt, settings.attempts)
        if final or attempt == settings.attempts:
            return False
        time.sleep(min(2.0**attempt / 4, 5.0))
    return False


def _post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """The webhook's HTTP status; 503 when it cannot be reached (its URL, a secret, is never
    logged)."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError as error:  # unreachable or timed out
        log.warning("the alert webhook is unreachable (%s)", type(error).__name__)
        return 503


def notify(settings: AlertConfig, text: str) -> bool:
    """POST `{"text": ...}` to the webhook in $<webhook_env>; False (logged) when it is not
    set or never answered 2xx."""
    url = os.environ.get(settings.webhook_env, "")
    if not url:
        log.warning("no alert sent: %s is not set", settings.webhook_env)
        return False
    if not url.lower().startswith(("https://", "http://")):
        log.warning("no alert sent: %s is not an http(s) URL", settings.webhook_env)
        return False
    body = json.dumps({"text": redacted(text)}).encode()
    headers = {"Content-Type": "application/json"}
    return _attempts(
        "the alert webhook", settings, lambda: _post(url, body, headers, settings.timeout_s)
    )


def dispatch(settings: AlertConfig, payload: dict[str, str]) -> bool:
    """`repository_dispatch` of `settings.event_type` to $GITHUB_REPOSITORY with $GITHUB_TOKEN
    (a token that may only dispatch), through $GITHUB_API_URL when set: the webhook bridge's
    GitHub client."""
    from ..webhooks import dispatch as post_dispatch

    repository, token = os.environ.get("GITHUB_REPOSITORY"), os.environ.get("GITHUB_TOKEN")
    if not repository or not token:
        log.warning("no retraining dispatched: set GITHUB_REPOSITORY and GITHUB_TOKEN")
        return False
    api = os.environ.get("GITHUB_API_URL") or GITHUB_API
    body = {"event_type": settings.event_type, "client_payload": payload}
    return _attempts(
        "the retraining dispatch",
        settings,
        lambda: post_dispatch(body, repository, token, api, settings.timeout_s),
    )
