"""Promotion and rollback of `@champion`, one at a time per model.

`promote` trusts no tag: under the lock it runs the validation gate again, against the champion
of that moment, and moves `@champion` only when that passes. The verdict is recorded on the
version (informative) and, with the digest of the files it checked, on the lock, which only
promoters may write (`registry.validated`: what the serving image is built from); a rollback
withdraws the demoted version's record.

The lock is a ticket queue in the registered model `<model>.promotion-lock`: each promotion
creates a version there (an atomic write that the server's permissions decide: an
administrator creates that model and gives MANAGE on it to the promoters only), and the lowest
live ticket holds the lock. A ticket older than `STALE_LOCK_S` was left by a crashed promotion
and is removed by the next one. A user who may not promote can neither take nor block it.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlflow.exceptions import MlflowException

from . import validation
from .config import Config
from .names import VERSION_RE
from .registry import (
    LOCK_SOURCE,
    STATUS_TAG,
    RegistryError,
    champion,
    check_model,
    lock_name,
    record_validated,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from .project import Project
    from .tracking.store import Tracking

STALE_LOCK_S = 600.0


class PromotionError(RegistryError):
    """The promotion or rollback was refused."""


def _ticket(client: MlflowClient, name: str) -> ModelVersion:
    holder = f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"
    try:
        return client.create_model_version(lock_name(name), LOCK_SOURCE, description=holder)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise PromotionError(
                f"the promotion lock {lock_name(name)!r} does not exist: `make setup` creates "
                "it on a store without authentication; on a team server, an administrator's "
                "`access` does (a promotion never creates it)"
            ) from error
        if error.error_code == "UNAUTHENTICATED":
            raise PromotionError(
                "the tracking server did not accept your credentials: check "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (`make doctor`)"
            ) from error
        if error.error_code == "PERMISSION_DENIED":
            raise PromotionError(
                f"you may not promote {name}: only promoters may write {lock_name(name)!r} "
                "(an administrator grants MANAGE on it; see README: team roles)"
            ) from error
        raise


@contextmanager
def promotion_lock(client: MlflowClient, name: str, timeout_s: float) -> Iterator[None]:
    """Hold the model's promotion lock (see the module docstring)."""
    mine = _ticket(client, name)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            live = []
            for ticket in client.search_model_versions(f"name = '{lock_name(name)}'"):
                age = time.time() - ticket.creation_timestamp / 1000
                if ticket.version != mine.version and age > STALE_LOCK_S:
                    client.delete_model_version(lock_name(name), ticket.version)
                else:
                    live.append(int(ticket.version))
            if min(live, default=int(mine.version)) >= int(mine.version):
                break
            if time.monotonic() > deadline:
                raise PromotionError(
                    f"another promotion of {name} holds {lock_name(name)!r}; retry when it finishes"
                )
            time.sleep(0.2)
        yield
    finally:
        client.delete_model_version(lock_name(name), mine.version)


def promote(project: Project, tracking: Tracking, cfg: Config, name: str, version: str) -> str:
    """Move `champion` to `version` if it passes the gate now, against the current champion."""
    check_model(cfg, name)
    if not VERSION_RE.match(version):
        raise PromotionError(f"version {version!r} must be a version number, e.g. 3")
    client = tracking.client
    aliases = cfg.registry
    with promotion_lock(client, name, aliases.lock_timeout_s):
        result = validation.validate(project, tracking, cfg, name, version, mode="enforce")
        validation.record(tracking, result)
        if not result.passed:
            raise PromotionError(
                f"{name} v{version} does not pass the validation gate:\n{result.table()}"
            )
        record_validated(client, name, version, result.digest)
        current = champion(tracking, cfg, name)
        if current is not None:
            client.set_registered_model_alias(name, aliases.previous_alias, current.version)
        client.set_registered_model_alias(name, aliases.champion_alias, version)
        if str(client.get_registered_model(name).aliases.get(aliases.alias)) == version:
            client.delete_registered_model_alias(name, aliases.alias)
        previous = str(current.version) if current else "none"
        client.set_model_version_tag(name, version, "promoted_at", _now())
        client.set_model_version_tag(name, version, "promoted_over", previous)
    return (
        f"{result.table()}\n{name} v{version} is now @{aliases.champion_alias} "
        f"(previous: {previous})"
    )


def rollback(tracking: Tracking, cfg: Config, name: str) -> str:
    """Give `champion` back to `previous-champion`; the demoted version must be re-validated."""
    check_model(cfg, name)
    client = tracking.client
    aliases = cfg.registry
    with promotion_lock(client, name, aliases.lock_timeout_s):
        registered = client.get_registered_model(name).aliases
        previous = registered.get(aliases.previous_alias)
        if previous is None:
            raise PromotionError(f"{name} has no @{aliases.previous_alias} to roll back to")
        demoted = registered.get(aliases.champion_alias)
        client.set_registered_model_alias(name, aliases.champion_alias, str(previous))
        client.delete_registered_model_alias(name, aliases.previous_alias)
        if demoted is not None:
            record_validated(client, name, str(demoted), None)
            client.set_model_version_tag(name, str(demoted), STATUS_TAG, "rolled-back")
            client.set_model_version_tag(name, str(demoted), "rolled_back_at", _now())
    return f"{name} v{previous} is @{aliases.champion_alias} again (rolled back from v{demoted})"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
