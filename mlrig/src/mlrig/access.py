"""Team roles on a basic-auth tracking server, set by an administrator (`access`).

| role     | experiment | registered model | promotion lock | for                         |
| -------- | ---------- | ---------------- | -------------- | --------------------------- |
| reader   | READ       | READ             | READ           | CI validation, dashboards   |
| trainer  | EDIT       | EDIT             | READ           | people who train and register |
| promoter | EDIT       | MANAGE           | MANAGE         | the promotion job only      |

Only a promoter can take the promotion lock (`mlrig.promotion`), so only a promoter can promote,
and nobody else can block promotions. `access` creates the lock (a promotion never does) and,
with it, a user named after that very lock and its creation time (`witness`; no permission, a
password nobody keeps): only an administrator can create users, so a lock without its witness
was created by someone else -- say, a user who created it before the administrator's first
`access`, which made them its manager -- and `access` refuses it, naming who holds more than
READ on it. Registering a version needs EDIT on the model, and MLflow grants aliases per model,
not per alias: a trainer could set an alias by hand. The gate protects the path through
`promote`; the serving image is built only from the files `promote` validated.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from .config import Config
from .errors import ProjectError

if TYPE_CHECKING:
    from .tracking.store import Tracking

ROLES: dict[str, dict[str, str]] = {
    "reader": {"experiment": "READ", "model": "READ", "lock": "READ"},
    "trainer": {"experiment": "EDIT", "model": "EDIT", "lock": "READ"},
    # `score` (score.yml): its inference runs in the experiment; the registry, read only.
    "scorer": {"experiment": "EDIT", "model": "READ", "lock": "READ"},
    "promoter": {"experiment": "EDIT", "model": "MANAGE", "lock": "MANAGE"},
}


class AccessError(ProjectError):
    """The roles cannot be given as asked; the message says what to do."""


def grant(
    tracking: Tracking, cfg: Config, username: str, role: str, password: str | None
) -> list[str]:
    """Create the project's experiment, model and promotion lock if missing, the user if a
    password is given, and give the user the role's permissions; one line per change. Run
    twice, it changes nothing the second time. A lock that `access` did not create is
    refused, before anything changes."""
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    from .registry import create_lock, lock_name

    auth = get_app_client("basic-auth", tracking_uri=tracking.uri)
    client = tracking.client
    name = cfg.registry.model_name
    lines = []
    lock_exists = check_lock(auth, client, name)
    experiment_id = tracking.ensure_experiment()
    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    if not lock_exists and create_lock(client, name):
        created = client.get_registered_model(lock_name(name)).creation_timestamp
        auth.create_user(witness(lock_name(name), created), secrets.token_urlsafe(32))
        lines.append(f"created the promotion lock {lock_name(name)}")
    elif not lock_exists:  # created since `check_lock`: refused unless `access` did
        check_lock(auth, client, name)
    if password:
        try:
            auth.create_user(username, password)
            lines.append(f"created user {username}")
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            lines.append(f"user {username} exists: its password is unchanged")
    resources = {
        "experiment": ("experiment", experiment_id),
        "model": ("registered_model", name),
        "lock": ("registered_model", lock_name(name)),
    }
    for resource, permission in ROLES[role].items():
        kind, identifier = resources[resource]
        give(auth, username, kind, identifier, permission)
        lines.append(f"{username}: {permission} on {kind} {identifier}")
    return lines


def give(auth: Any, username: str, kind: str, identifier: str, permission: str) -> None:
    """Grant a permission, replacing the one the user had on that resource."""
    from mlflow.exceptions import MlflowException

    try:
        auth.grant_user_permission(username, kind, identifier, permission)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        auth.revoke_user_permission(username, kind, identifier)
        auth.grant_user_permission(username, kind, identifier, permission)


def witness(lock: str, created_ms: int) -> str:
    """The user `access` creates with the lock, named after that very lock."""
    return f"{lock}.created-{created_ms}"


def check_lock(auth: Any, client: Any, name: str) -> bool:
    """Whether the promotion lock exists; refused when it has no witness (`access` did not
    create it), naming the users who hold more than READ on it: they could take and delete
    tickets, and block every promotion."""
    from mlflow.exceptions import MlflowException

    from .registry import lock_name

    lock = lock_name(name)
    try:
        created = client.get_registered_model(lock).creation_timestamp
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False  # `access` creates it
        raise
    try:
        auth.get_user(witness(lock, created))
        return True
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    raise AccessError(
        f"the promotion lock {lock!r} was not created by `access` (held by "
        f"{', '.join(holders(auth, lock)) or 'nobody but administrators'}): as an "
        f"administrator, delete the registered model {lock!r} and run `access` again, which "
        "creates it (nothing was changed)"
    )


def holders(auth: Any, lock: str) -> list[str]:
    """The users who are not administrators and hold more than READ on `lock`."""
    from mlflow.exceptions import MlflowException

    users = auth._request("/api/2.0/mlflow/users/list", "GET").get("users", [])
    found = []
    for user in users:
        if user.get("is_admin"):
            continue
        try:
            held = auth.get_user_permission(user["username"], "registered_model", lock)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            continue  # no permission of its own
        if str(held.permission) not in ("READ", "NO_PERMISSIONS"):
            found.append(f"{user['username']} ({held.permission})")
    return found
