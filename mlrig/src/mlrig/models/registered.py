"""A model version from the registry, loaded as the untrusted input it is.

Whoever may register a version chooses its files, so nothing in them may decide what runs: the
MLmodel file is read as plain YAML; the flavor must be one the project logs; its native
format is read by the native loader (`ModelSpec.load_native`), never by the loader, class or
`code` path that the file names; and its environment may name only the distributions that
flavor needs, pinned, so that serving it installs nothing else.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .base import ModelRefused, ModelSpec, inside

if TYPE_CHECKING:
    from ..project import Project

BUILD_TOOLS = frozenset({"pip", "setuptools", "wheel"})


@dataclass(frozen=True)
class Registered:
    uri: str
    spec: ModelSpec[Any]
    model: Any
    inputs: list[str] | None  # the input signature's column names (None: no signature)


def load(project: Project, uri: str, tracking_uri: str) -> Registered:
    """Download `uri` (e.g. models:/name/3) from the store at `tracking_uri` and load it with
    one of the project's model kinds, without running code from it."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="registered-") as scratch:
        folder = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=scratch, tracking_uri=tracking_uri
            )
        )
        mlmodel = _yaml(inside(folder, "MLmodel"), uri)
        flavors = mlmodel.get("flavors") or {}
        spec = project.for_flavors(flavors, uri)
        check_environment(folder, spec, uri)
        model = spec.load_native(folder, flavors[spec.flavor] or {})
    return Registered(uri, spec, model, _inputs(mlmodel, uri))


def _yaml(path: Path, uri: str) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    if not isinstance(loaded, dict):
        raise ModelRefused(f"{uri}: {path.name} is not a YAML mapping")
    return loaded


def _inputs(mlmodel: dict[str, Any], uri: str) -> list[str] | None:
    inputs = (mlmodel.get("signature") or {}).get("inputs")
    if inputs is None:
        return None
    try:
        return [str(column["name"]) for column in json.loads(inputs)]
    except (TypeError, KeyError, ValueError) as error:
        raise ModelRefused(f"{uri}: unreadable input signature ({error})") from error


def check_environment(folder: Path, spec: ModelSpec[Any], uri: str) -> None:
    """requirements.txt, python_env.yaml and conda.yaml name only `spec.requirements`, pinned
    (`name==version`), plus pip's build tools: no URL, index, file or option."""
    pins = [line.strip() for line in inside(folder, "requirements.txt").read_text().splitlines()]
    pins = [line for line in pins if line and not line.startswith("#")]
    python_env = folder / "python_env.yaml"
    if python_env.exists():
        env = _yaml(python_env, uri)
        _allowed(env.get("build_dependencies") or [], BUILD_TOOLS, "build_dependencies", uri)
        pins += [d for d in env.get("dependencies") or [] if d != "-r requirements.txt"]
    conda = folder / "conda.yaml"
    if conda.exists():
        for dependency in _yaml(conda, uri).get("dependencies") or []:
            if isinstance(dependency, dict):
                pins += list(dependency.get("pip") or [])
    _allowed(pins, spec.requirements, "requirements", uri, pinned=True)


def _allowed(
    lines: list[Any], names: frozenset[str], where: str, uri: str, pinned: bool = False
) -> None:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    for line in lines:
        try:
            requirement = Requirement(str(line))
        except InvalidRequirement:
            requirement = None
        specifiers = list(requirement.specifier) if requirement else []
        exact = len(specifiers) == 1 and specifiers[0].operator == "=="
        if (
            requirement is None
            or requirement.url
            or requirement.marker
            or canonicalize_name(requirement.name) not in names
            or (pinned and not exact)
        ):
            raise ModelRefused(
                f"{uri}: {where} names {line!r}; a {sorted(names)} model may name only those, "
                "pinned with =="
            )
