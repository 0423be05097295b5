"""Model Registry: versions and aliases (never deprecated stages), promotion and rollback.

Aliases: `challenger` (newest trained), `champion` (serving), `previous-champion` (rollback
target). Promotion and rollback hold a per-model lock so that concurrent promotions leave
exactly one champion and a correct rollback target.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from .config import Config
from .errors import ProjectError

VERSION_RE = re.compile(r"^[1-9][0-9]{0,9}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
# Tags the validation gate writes on a version, and what `promote` requires of them.
STATUS_TAG = "validation.status"
BASELINE_TAG = "validation.baseline_version"
NO_CHAMPION = "none"
LOCK_SUFFIX = ".promotion-lock"
STALE_LOCK_S = 600.0  # a lock older than this was left by a crashed promotion


class RegistryError(ProjectError):
    """A registry request was refused; the message says why and what to do."""


class PromotionError(RegistryError):
    """The promotion or rollback was refused."""


def resolve(name: str, reference: str) -> ModelVersion:
    """A version number or an alias (e.g. `challenger`) to a model version."""
    client = MlflowClient()
    if VERSION_RE.match(reference):
        return client.get_model_version(name, reference)
    if ALIAS_RE.match(reference):
        return client.get_model_version_by_alias(name, reference)
    raise RegistryError(
        f"model reference {reference!r} is neither a version number nor an alias name"
    )


def champion(cfg: Config, name: str) -> ModelVersion | None:
    client = MlflowClient()
    aliases = client.get_registered_model(name).aliases
    version = aliases.get(cfg.registry.champion_alias)
    return None if version is None else client.get_model_version(name, str(version))


def register(model_uri: str, name: str, alias: str, run_id: str) -> ModelVersion:
    """Register `model_uri` as a new version of `name` and set `alias` on it."""
    version = mlflow.register_model(model_uri, name, tags={"source_run_id": run_id})
    MlflowClient().set_registered_model_alias(name, alias, version.version)
    return version


@contextmanager
def promotion_lock(name: str, timeout_s: float) -> Iterator[None]:
    """Mutual exclusion per model: creating a registered model is atomic in every store."""
    client = MlflowClient()
    lock = f"{name}{LOCK_SUFFIX}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.create_registered_model(lock, description=f"promotion of {name} in progress")
            break
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            created = client.get_registered_model(lock).creation_timestamp / 1000
            if time.time() - created > STALE_LOCK_S:
                client.delete_registered_model(lock)
                continue
            if time.monotonic() > deadline:
                raise PromotionError(
                    f"another promotion of {name} holds {lock!r}; retry when it finishes"
                ) from err
            time.sleep(0.2)
    try:
        yield
    finally:
        client.delete_registered_model(lock)


def promote(cfg: Config, name: str, version: str) -> str:
    """Move `champion` to a version that passed validation against the current champion."""
    if not VERSION_RE.match(version):
        raise PromotionError(f"version {version!r} must be a version number, e.g. 3")
    client = MlflowClient()
    aliases = cfg.registry
    with promotion_lock(name, aliases.lock_timeout_s):
        candidate = client.get_model_version(name, version)
        if candidate.tags.get(STATUS_TAG) != "passed":
            raise PromotionError(
                f"{name} v{version} has not passed validation "
                f"({STATUS_TAG}={candidate.tags.get(STATUS_TAG)!r}): run `validate` first"
            )
        current = champion(cfg, name)
        current_version = str(current.version) if current else NO_CHAMPION
        if candidate.tags.get(BASELINE_TAG) != current_version:
            raise PromotionError(
                f"{name} v{version} was validated against champion "
                f"{candidate.tags.get(BASELINE_TAG)}, but the champion is now {current_version}: "
                "validate it again"
            )
        if current is not None:
            client.set_registered_model_alias(name, aliases.previous_alias, current.version)
        client.set_registered_model_alias(name, aliases.champion_alias, version)
        if client.get_registered_model(name).aliases.get(aliases.alias) == int(version):
            client.delete_registered_model_alias(name, aliases.alias)
        client.set_model_version_tag(name, version, "promoted_at", _now())
        client.set_model_version_tag(name, version, "promoted_over", current_version)
    return f"{name} v{version} is now @{aliases.champion_alias} (previous: {current_version})"


def rollback(cfg: Config, name: str) -> str:
    """Give `champion` back to `previous-champion`; the demoted version must be re-validated."""
    client = MlflowClient()
    aliases = cfg.registry
    with promotion_lock(name, aliases.lock_timeout_s):
        registered = client.get_registered_model(name).aliases
        previous = registered.get(aliases.previous_alias)
        if previous is None:
            raise PromotionError(f"{name} has no @{aliases.previous_alias} to roll back to")
        demoted = registered.get(aliases.champion_alias)
        client.set_registered_model_alias(name, aliases.champion_alias, str(previous))
        client.delete_registered_model_alias(name, aliases.previous_alias)
        if demoted is not None:
            client.set_model_version_tag(name, str(demoted), STATUS_TAG, "rolled-back")
            client.set_model_version_tag(name, str(demoted), "rolled_back_at", _now())
    return f"{name} v{previous} is @{aliases.champion_alias} again (rolled back from v{demoted})"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
