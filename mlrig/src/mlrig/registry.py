"""Model Registry: versions, aliases (never the deprecated stages), and the names of the tags
the validation gate writes.

Aliases: `challenger` (newest trained), `champion` (serving), `previous-champion` (rollback
target). Registration is idempotent per run: a retry, a replay or a `sync` after a lost
response finds the version the run already made instead of making a second one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mlflow
from mlflow.exceptions import MlflowException

from .config import Config
from .errors import ProjectError
from .names import ALIAS_RE, VERSION_RE

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from .tracking.store import Tracking

# Tags the gate writes on the version it judged; informative only: whoever may register a
# version may tag it, so `promote` re-runs the gate itself and serving reads `validated`.
STATUS_TAG = "validation.status"
BASELINE_TAG = "validation.baseline_version"
DIGEST_TAG = "validation.digest"  # of the files the gate checked
NO_CHAMPION = "none"
# The promotion lock's tickets are versions of this registered model (promotion.py).
LOCK_SUFFIX = ".promotion-lock"
LOCK_SOURCE = "lock:///promotion-ticket"  # what a ticket "is": it holds no model


class RegistryError(ProjectError):
    """A registry request was refused; the message says why and what to do."""


def check_model(cfg: Config, name: str) -> str:
    """The project acts on its own registered model only (a name from an event or a workflow
    input is checked before anything is loaded)."""
    if name != cfg.registry.model_name:
        raise RegistryError(
            f"model {name!r} is not this project's model ({cfg.registry.model_name!r})"
        )
    return name


def resolve(tracking: Tracking, name: str, reference: str, cli: str) -> ModelVersion:
    """A version number or an alias (e.g. `challenger`) to a model version (`cli`: how the
    project's command line is typed, for the message that says how to make one)."""
    client = tracking.client
    if VERSION_RE.match(reference):
        return client.get_model_version(name, reference)
    if ALIAS_RE.match(reference):
        try:
            return client.get_model_version_by_alias(name, reference)
        except MlflowException as err:
            if "not found" not in err.message:  # sqlite: INVALID_PARAMETER_VALUE, a server: 404
                raise
            raise RegistryError(
                f"no version of {name} has the alias @{reference} yet: a training run "
                f"registers a challenger (`make run`); `{cli} validate --version N`, then "
                f"`{cli} promote --version N` makes version N the champion."
            ) from err
    raise RegistryError(
        f"model reference {reference!r} is neither a version number nor an alias name"
    )


def champion(tracking: Tracking, cfg: Config, name: str) -> ModelVersion | None:
    client = tracking.client
    aliases = client.get_registered_model(name).aliases
    version = aliases.get(cfg.registry.champion_alias)
    return None if version is None else client.get_model_version(name, str(version))


def register(
    tracking: Tracking, model_uri: str, name: str, alias: str, run_id: str
) -> ModelVersion:
    """Register the run's model as a version of `name` -- once -- and point `alias` at it."""
    client = tracking.client
    made = [
        version
        for version in client.search_model_versions(f"name = '{name}' AND run_id = '{run_id}'")
        if version.source == model_uri
    ]
    if made:
        version = min(made, key=lambda v: int(v.version))
    else:
        version = mlflow.register_model(model_uri, name, tags={"source_run_id": run_id})
    if alias not in (version.aliases or []):
        try:
            client.set_registered_model_alias(name, alias, version.version)
        except Exception:
            if alias not in client.get_registered_model(name).aliases:
                raise
            # Another process made the alias at the same instant (tune's workers each register
            # the study's best; sqlite: a unique constraint): setting it now is an update.
            client.set_registered_model_alias(name, alias, version.version)
    return version


def lock_name(name: str) -> str:
    return f"{name}{LOCK_SUFFIX}"


def authenticated(tracking: Tracking) -> bool:
    """Whether the store checks who asks (MLflow's basic-auth app answers on a server): then
    only an administrator's `access` may create the promotion lock."""
    if tracking.scheme not in ("http", "https"):
        return False
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    answer = http_request(
        get_default_host_creds(tracking.uri), "/api/2.0/mlflow/users/current", "GET",
        max_retries=0,
    )  # fmt: skip
    return answer.status_code != 404


def create_lock(client: MlflowClient, name: str) -> bool:
    """The promotion lock's registered model (on a team server, an administrator's step:
    `access`), whose MANAGE permission says who may promote; False: it existed."""
    try:
        client.create_registered_model(
            lock_name(name), description=f"promotion tickets of {name} (see mlrig.promotion)"
        )
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return False
    return True


def validated_tag(version: str) -> str:
    return f"validated.{version}"


def record_validated(client: MlflowClient, name: str, version: str, digest: str | None) -> None:
    """Record on the promotion lock -- which only promoters may write -- that `promote`
    validated `version` with files of `digest` (None: the record is withdrawn)."""
    if digest is not None:
        client.set_registered_model_tag(lock_name(name), validated_tag(version), digest)
    elif validated_tag(version) in client.get_registered_model(lock_name(name)).tags:
        client.delete_registered_model_tag(lock_name(name), validated_tag(version))


def validated(client: MlflowClient, name: str, version: str) -> str | None:
    """The digest of the files `promote` validated for `version` (None: it did not, or its
    record was withdrawn by a rollback)."""
    try:
        return client.get_registered_model(lock_name(name)).tags.get(validated_tag(version))
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None
