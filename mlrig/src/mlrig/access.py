"""Team roles on a basic-auth tracking server, set by an administrator (`access`).

| role     | experiment | registered model | promotion lock | for                         |
| -------- | ---------- | ---------------- | -------------- | --------------------------- |
| reader   | READ       | READ             | READ           | CI validation, dashboards   |
| trainer  | EDIT       | EDIT             | READ           | people who train and register |
| promoter | EDIT       | MANAGE           | MANAGE         | the promotion job only      |

Only a promoter can take the promotion lock (`mlrig.promotion`), so only a promoter can promote,
and nobody else can block promotions. Registering a version needs EDIT on the model, and MLflow
grants aliases per model, not per alias: a trainer could set an alias by hand. The gate
protects the path through `promote`; the serving image is built only from the version that
`promote` validated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import Config

if TYPE_CHECKING:
    from .tracking.store import Tracking

ROLES: dict[str, dict[str, str]] = {
    "reader": {"experiment": "READ", "model": "READ", "lock": "READ"},
    "trainer": {"experiment": "EDIT", "model": "EDIT", "lock": "READ"},
    "promoter": {"experiment": "EDIT", "model": "MANAGE", "lock": "MANAGE"},
}


def grant(
    tracking: Tracking, cfg: Config, username: str, role: str, password: str | None
) -> list[str]:
    """Create the project's experiment, model and promotion lock if missing, the user if a
    password is given, and give the user the role's permissions; one line per change."""
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    from .registry import create_lock, lock_name

    auth = get_app_client("basic-auth", tracking_uri=tracking.uri)
    client = tracking.client
    name = cfg.registry.model_name
    experiment_id = tracking.ensure_experiment()
    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    create_lock(client, name)
    lines = []
    if password:
        auth.create_user(username, password)
        lines.append(f"created user {username}")
    resources = {
        "experiment": ("experiment", experiment_id),
        "model": ("registered_model", name),
        "lock": ("registered_model", lock_name(name)),
    }
    for resource, permission in ROLES[role].items():
        kind, identifier = resources[resource]
        auth.grant_user_permission(username, kind, identifier, permission)
        lines.append(f"{username}: {permission} on {kind} {identifier}")
    return lines
