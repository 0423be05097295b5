"""A model version from the registry, loaded as the untrusted input it is.

Whoever may register a version chooses its files, so nothing in them may decide what runs: the
MLmodel file is read as plain YAML; the flavor must be one the project logs, and its
`python_function` section (what `mlflow models serve`, `mlflow.pyfunc.load_model` and the
serving image load) exactly the one MLflow writes for that flavor -- its own loader, the same
native file, no `code`; the folder holds the flavor's files and nothing else; the native
format is read by the native loader (`ModelSpec.load_native`), never by the loader, class or
`code` path that the file names; and its environment may name only the distributions that
flavor needs, pinned, so that serving it installs nothing else. What was checked has a digest
(`Registered.digest`): the gate records it on the version, and the serving image is built from
exactly those files.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .base import ModelRefused, ModelSpec, files_digest, inside

if TYPE_CHECKING:
    from ..project import Project

BUILD_TOOLS = frozenset({"pip", "setuptools", "wheel"})
PYFUNC = "python_function"
# What MLflow writes beside the native file of a logged model, and what the download adds.
ENVIRONMENT = ("requirements.txt", "python_env.yaml", "conda.yaml")
EXAMPLES = ("input_example.json", "serving_input_example.json")
DOWNLOADED = "registered_model_meta"  # written by the registry's download: not the model's
CONDA_PACKAGE = re.compile(r"\A(python|pip)([<>=!~]=?[\w.*]+)*\Z", re.ASCII)  # what MLflow writes
PYTHON_VERSION = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?")  # a whole value: fullmatch
PYTHON_ENV_KEYS = frozenset({"python", "build_dependencies", "dependencies"})


@dataclass(frozen=True)
class Registered:
    uri: str
    spec: ModelSpec[Any]
    model: Any
    inputs: list[str] | None  # the input signature's column names (None: no signature)
    digest: str  # sha256 of the checked files (the download's own file aside)
    mlmodel: dict[str, Any]  # the MLmodel file, as checked


def load(project: Project, uri: str, tracking_uri: str) -> Registered:
    """Download `uri` (e.g. models:/name/3) from the store at `tracking_uri` and load it with
    one of the project's model kinds, without running code from it."""
    with tempfile.TemporaryDirectory(prefix="registered-") as scratch:
        return fetch(project, uri, tracking_uri, Path(scratch))


def fetch(project: Project, uri: str, tracking_uri: str, into: Path) -> Registered:
    """`load`, the checked files kept in the folder `into` (a serving image's context)."""
    import mlflow.artifacts

    folder = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(into), tracking_uri=tracking_uri
        )
    )
    mlmodel = _yaml(inside(folder, "MLmodel"), uri)
    flavors = _mapping(mlmodel.get("flavors"), "flavors", uri)
    spec = project.for_flavors(flavors, uri)
    native = _mapping(flavors[spec.flavor], spec.flavor, uri)
    check_flavors(flavors, spec, uri)
    check_files(folder, spec.native_file(native), uri)
    check_environment(folder, spec, uri)
    model = spec.load_native(folder, native)
    return Registered(uri, spec, model, _inputs(mlmodel, uri), digest(folder), mlmodel)


def check_flavors(flavors: dict[str, Any], spec: ModelSpec[Any], uri: str) -> None:
    """The flavor and its `python_function` section, exactly as MLflow writes them for it:
    what serves the model is then the flavor's own loader on the same native file."""
    extra = sorted(set(flavors) - {spec.flavor, PYFUNC})
    if extra:
        raise ModelRefused(f"{uri}: MLmodel has the flavors {extra} besides {spec.flavor}")
    native = _mapping(flavors[spec.flavor], spec.flavor, uri)
    try:
        spec.check_flavor(native)
    except ModelRefused as error:
        raise ModelRefused(f"{uri}: {error}") from error
    pyfunc = dict(_mapping(flavors.get(PYFUNC), PYFUNC, uri))
    version = str(pyfunc.pop("python_version", ""))
    expected = spec.serving(native)
    if pyfunc != expected or not PYTHON_VERSION.fullmatch(version):
        raise ModelRefused(
            f"{uri}: its python_function flavor (what serving loads) is {pyfunc}, not the one "
            f"MLflow writes for {spec.flavor}: {expected}"
        )


def check_files(folder: Path, native: str, uri: str) -> None:
    """The model's folder holds its native file, its environment, its input examples and
    MLmodel: no other file or folder (code that a loader could find)."""
    allowed = {"MLmodel", native, *ENVIRONMENT, *EXAMPLES, DOWNLOADED}
    found = {path.relative_to(folder).as_posix() for path in folder.rglob("*")}
    extra = sorted(found - allowed)
    if extra:
        raise ModelRefused(f"{uri}: the model folder holds files a model has no use for: {extra}")


def digest(folder: Path) -> str:
    """sha256 of the model's files, names and bytes (the download's own file aside)."""
    return files_digest(folder, but=DOWNLOADED)


def _yaml(path: Path, uri: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ModelRefused(f"{uri}: {path.name} is not readable YAML ({error})") from error
    return _mapping(loaded, path.name, uri)


def _mapping(value: Any, what: str, uri: str) -> dict[str, Any]:
    """`value` if it is a mapping (None: an empty one), else refused: the files are untrusted."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ModelRefused(f"{uri}: {what} in MLmodel is not a mapping")
    return value


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
    (`name==version`), plus pip's build tools (and, for conda, Python and pip from
    conda-forge): no URL, extra, marker, index, file, channel or option; python_env.yaml's
    Python is a version number (a serving image's base image is named after it)."""
    pins = [line.strip() for line in inside(folder, "requirements.txt").read_text().splitlines()]
    pins = [line for line in pins if line and not line.startswith("#")]
    python_env = folder / "python_env.yaml"
    if python_env.exists():
        env = _yaml(python_env, uri)
        unknown = sorted(set(env) - PYTHON_ENV_KEYS)
        if unknown or not PYTHON_VERSION.fullmatch(str(env.get("python", ""))):
            raise ModelRefused(
                f"{uri}: python_env.yaml must hold a Python version (e.g. 3.11.7) and its "
                f"dependencies only; it holds python={env.get('python')!r}, {unknown or ''}"
            )
        _allowed(env.get("build_dependencies") or [], BUILD_TOOLS, "build_dependencies", uri)
        pins += [d for d in env.get("dependencies") or [] if d != "-r requirements.txt"]
    conda = folder / "conda.yaml"
    if conda.exists():
        environment = _yaml(conda, uri)
        if set(environment.get("channels") or []) - {"conda-forge"}:
            raise ModelRefused(f"{uri}: conda.yaml names channels {environment['channels']}")
        for dependency in environment.get("dependencies") or []:
            if isinstance(dependency, dict) and set(dependency) == {"pip"}:
                pins += list(dependency["pip"] or [])
            elif not (isinstance(dependency, str) and CONDA_PACKAGE.match(dependency)):
                raise ModelRefused(f"{uri}: conda.yaml names {dependency!r}: only python and pip")
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
            or requirement.extras
            or canonicalize_name(requirement.name) not in names
            or (pinned and not exact)
        ):
            raise ModelRefused(
                f"{uri}: {where} names {line!r}; a {sorted(names)} model may name only those, "
                "pinned with =="
            )
