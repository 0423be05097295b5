"""Team roles on a basic-auth tracking server, set by an administrator (`access`).

| role     | experiment | registered model | promotion lock | for                         |
| -------- | ---------- | ---------------- | -------------- | --------------------------- |
| reader   | READ       | READ             | READ           | CI validation, dashboards   |
| trainer  | EDIT       | EDIT             | READ           | people who train and register |
| promoter | EDIT       | MANAGE           | MANAGE         | the promotion job only      |

Only a promoter can take the promotion lock (`mlrig.promotion`), so only a promoter can promote,
and nobody else can block promotions. `access` creates the lock (a promotion never does) and
refuses a lock that anyone but an administrator or a promoter holds more than READ on -- say,
one a user created before the administrator's first `access`, which made them its manager.
Registering a version needs EDIT on the model, and MLflow grants aliases per model, not per
alias: a trainer could set an alias by hand. The gate protects the path through `promote`; the
serving image is built only from the files `promote` validated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Config
from .errors import ProjectError

if TYPE_CHECKING:
    from .tracking.store import Tracking

ROLES: dict[str, dict[str, str]] = {
    "reader": {"experiment": "READ", "model": "READ", "lock": "READ"},
    "trainer": {"experiment": "EDIT", "model": "EDIT", "lock": "READ"},
    "promoter": {"experiment": "EDIT", "model": "MANAGE", "lock": "MANAGE"},
}


class AccessError(ProjectError):
    """The roles cannot be given as asked; the message says what to do."""


def grant(
    tracking: Tracking, cfg: Config, username: str, role: str, password: str | None
) -> list[str]:
    """Create the project's experiment, model and promotion lock if missing, the user if a
    password is given, and give the user the role's permissions; one line per change. Run
    twice, it changes nothing the second time. A lock whose permissions say someone else
    manages it is refused, before anything changes."""
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    from .registry import create_lock, lock_name

    auth = get_app_client("basic-auth", tracking_uri=tracking.uri)
    client = tracking.client
    name = cfg.registry.model_name
    lines = []
    check_lock(auth, client, name, exempt=username if role == "promoter" else None)
    experiment_id = tracking.ensure_experiment()
    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    create_lock(client, name)
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


def check_lock(auth: Any, client: Any, name: str, exempt: str | None) -> None:
    """Refuse a promotion lock that a user holds more than READ on without being a promoter
    (MANAGE on the model) or an administrator: they could take and delete tickets, and block
    every promotion. `exempt`: the user being made a promoter now."""
    from mlflow.exceptions import MlflowException

    from .registry import lock_name

    lock = lock_name(name)
    try:
        client.get_registered_model(lock)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return  # `access` creates it
        raise
    users = auth._request("/api/2.0/mlflow/users/list", "GET").get("users", [])
    squatters = []
    for user in users:
        if user.get("is_admin") or user["username"] == exempt:
            continue

        def held(resource: str, user: dict[str, Any] = user) -> str:
            found = auth.get_user_permission(user["username"], "registered_model", resource)
            return str(found.permission)

        if held(lock) not in ("READ", "NO_PERMISSIONS") and held(name) != "MANAGE":
            squatters.append(f"{user['username']} ({held(lock)})")
    if squatters:
        raise AccessError(
            f"the promotion lock {lock!r} is held by {', '.join(squatters)}, who are not "
            f"promoters (a user who creates a model manages it): as an administrator, delete "
            f"the registered model {lock!r} and run `access` again, which creates it (nothing "
            "was changed)"
        )
