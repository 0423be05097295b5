"""Refuse invalid template answers before cookiecutter writes anything (standard library only)."""

from __future__ import annotations

import importlib.util
import json
import keyword
import re
import sys
from pathlib import Path

# Rendered by cookiecutter; tests import this module unrendered and call validate() directly.
ANSWERS_JSON = r"""{{ cookiecutter | tojson }}"""
# The answers as given, before cookiecutter rendered them (cookiecutter.json with the command
# line's and the user config's values): an expression there reaches ANSWERS_JSON evaluated.
GIVEN_JSON = r"""{{ _cookiecutter | default({}) | tojson }}"""

MIN_PYTHON = (3, 11)
MAX_PYTHON = (3, 13)
# Choice answers and the values each accepts, the first the default. cookiecutter.json holds
# plain defaults, not lists: cookiecutter refuses a value outside a list with a traceback
# before any hook runs, where this hook says it in one line.
PYTHON_VERSIONS = tuple(f"3.{minor}" for minor in range(MIN_PYTHON[1], MAX_PYTHON[1] + 1))
CHOICES = {
    "model_library": ("xgboost", "scikit-learn"),
    "dvc_remote": ("local", "s3"),
    "ci_workflows": ("yes", "no"),
    "team_server": ("yes", "no"),
    "license": ("MIT", "BSD-3-Clause", "Proprietary"),
}
# Importing the project package must not shadow its own files' modules: tasks.py and
# tests/conftest.py.
RESERVED_PACKAGES = frozenset({"tasks", "conftest"})
# The modules and distributions a bake's dependencies install (every dependency group):
# derived from a set-up bake's venv by tools/dependency_modules.py, which the end-to-end test
# runs with --check. A package or project of one of these names would be imported or resolved
# instead of the library.
DEPENDENCY_NAMES_LISTED = """
IPython PIL aiobotocore aiohappyeyeballs aiohttp aiohttp_retry aioitertools aiosignal alembic
amqp annotated_doc annotated_types antlr4 antlr4_python3_runtime anyio appdirs ast_serialize
asttokens asyncssh atpublic attr attrs aws_xray_sdk billiard blinker boto3 botocore cachetools
celery certifi cffi cfgv cfn_lint cfnlint charset_normalizer click click_didyoumean
click_plugins click_repl cloudpickle colorama colorlog comm configobj contourpy coverage
cryptography cycler dask databricks databricks_sdk dateutil debugpy dictdiffer diskcache distlib
distributed distro docker dotenv dpath dulwich dvc dvc_data dvc_http dvc_objects dvc_render
dvc_s3 dvc_studio_client dvc_task entrypoints execnet executing fastapi fastjsonschema filelock
flask flask_cors flask_wtf flatten_dict flufl flufl_lock fontTools fonttools frozenlist fsspec
funcy git gitdb gitpython google google_auth grandalf graphene graphql graphql_core
graphql_relay grimp gto gunicorn h11 huey hydra hydra_core identify idna import_linter
importlib_metadata importlinter iniconfig ipykernel ipykernel_launcher ipython
ipython_pygments_lexers isympy iterative_telemetry itsdangerous jedi jinja2 jmespath joblib
joserfc jsonpatch jsonpatch_cli jsonpath_ng jsonpointer jsonschema jsonschema_path
jsonschema_specifications jupyter jupyter_client jupyter_core kiwisolver kombu lazy_object_proxy
librt locket mako markdown_it markdown_it_py markupsafe matplotlib matplotlib_inline mdurl
mlflow mlflow_skinny mlflow_tracing mlrig moto mpl_toolkits mpmath msgpack multidict mypy
mypy_extensions mypyc narwhals nbclient nbformat nbstripout nest_asyncio2 networkx nodeenv numpy
omegaconf openapi_schema_validator openapi_spec_validator opentelemetry opentelemetry_api
opentelemetry_proto opentelemetry_sdk opentelemetry_semantic_conventions optuna orjson packaging
pandas pandas_stubs pandera parso partd pathable pathspec pexpect pillow platformdirs pluggy
pre_commit pre_commit_hooks prettytable prompt_toolkit propcache protobuf psutil psycopg
psycopg_binary ptyprocess public pure_eval py py_partiql_parser pyarrow pyasn1 pyasn1_modules
pycparser pydantic pydantic_core pydantic_settings pydevd_plugins pydot pygit2 pygments pygtrie
pylab pyparsing pytest pytest_cov pytest_xdist python_dateutil python_discovery python_dotenv
pyyaml pyzmq referencing regex requests responses rfc3339_validator rich rpds rpds_py ruamel
ruamel_yaml ruff s3fs s3transfer scikit_learn scipy scmrepo semver setuptools shortuuid shtab
six sklearn skops smmap sortedcontainers sqlalchemy sqlparse sqltrie stack_data starlette sympy
tabulate tblib threadpoolctl tlz tomlkit toolz tornado tqdm traitlets typeguard
typing_extensions typing_inspect typing_inspection tzlocal urllib3 uvicorn validate vine
virtualenv voluptuous wcwidth werkzeug wrapt wtforms xdist xgboost xgboost_cpu xmltodict yaml
yarl zc zc_lockfile zict zipp zmq
"""
DEPENDENCY_NAMES = frozenset(DEPENDENCY_NAMES_LISTED.split())

MAX_SLUG = 64  # a folder, a distribution and (by default) a registered model name

SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
MODEL_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")
# Jinja's openers, spelled apart: this file is itself rendered by Jinja.
JINJA_OPENERS = tuple("{" + second for second in ("{", "%", "#"))
S3_URL_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$")


def _single_line(field: str, value: str) -> list[str]:
    if not value.strip():
        return [f"{field} must not be empty."]
    if any(ch in value for ch in "\r\n\t\x00"):
        return [f"{field} must be a single line without tabs or control characters."]
    return []


def _python_version(value: str) -> list[str]:
    match = VERSION_RE.match(value)
    lowest = ".".join(map(str, MIN_PYTHON))
    highest = ".".join(map(str, MAX_PYTHON))
    if not match:
        return [f"python_version {value!r} must look like MAJOR.MINOR, e.g. {lowest!r}."]
    if not MIN_PYTHON <= (int(match[1]), int(match[2])) <= MAX_PYTHON:
        return [f"python_version {value!r} is not supported: choose {lowest} to {highest}."]
    return []


def _dvc_remote(kind: str, url: str) -> list[str]:
    """The remote URL must be of the remote's kind (the one combination rule)."""
    if kind == "s3" and not S3_URL_RE.match(url):
        return [f"dvc_remote_url {url!r} must be s3://<bucket>[/path] when dvc_remote is 's3'."]
    if kind == "local" and ("://" in url or not url.strip() or any(c in url for c in "\r\n")):
        return [
            f"dvc_remote_url {url!r} must be a folder path when dvc_remote is 'local' "
            "(choose dvc_remote 's3' for an s3:// URL)."
        ]
    return []


def _importable(package: str) -> str | None:
    """Where `import <package>` would come from on this interpreter (e.g. Python's own `test`
    package, which `sys.stdlib_module_names` leaves out), or None. A project baked from this
    template and installed here (`cruft update` run in its venv) is no clash: it is this one."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    origin = Path(spec.origin or "")
    if origin.name == "__init__.py" and (origin.parents[2] / ".cruft.json").exists():
        return None  # <project>/src/<package>/__init__.py of a bake
    return spec.origin or "a namespace package"


def _jinja(value: object) -> bool:
    return isinstance(value, str) and any(opener in value for opener in JINJA_OPENERS)


def _templated(answers: dict[str, str], given: dict[str, object]) -> list[str]:
    """Answers holding Jinja syntax. Typed at a prompt, it would reach the files as it is;
    given on the command line or in a config file, cookiecutter evaluates it first. A value
    given as a template over other answers (`cookiecutter.<name>`, as the template's own
    defaults are) is one; anything else is taken for a literal value gone wrong."""
    fields = {k for k, v in answers.items() if _jinja(v)}
    fields |= {k for k, v in given.items() if _jinja(v) and "cookiecutter." not in str(v)}
    return [
        f"{field} {answers[field] if _jinja(answers.get(field)) else given[field]!r} contains "
        "Jinja template syntax, which cookiecutter would evaluate: give the value itself."
        for field in sorted(fields)
        if not field.startswith("_")
    ]


def validate(answers: dict[str, str], given: dict[str, object] | None = None) -> list[str]:
    """Return one message per invalid answer (empty when every answer is valid). `given`: the
    answers before cookiecutter rendered them."""
    errors = _templated(answers, given or {})
    if errors:
        return errors  # the rendered values are not what the user meant: judge nothing else
    for field in ("project_name", "description", "author"):
        errors += _single_line(field, answers[field])

    slug = answers["project_slug"]
    if len(slug) > MAX_SLUG:
        errors.append(f"project_slug is {len(slug)} characters long: at most {MAX_SLUG}.")
    elif not SLUG_RE.match(slug):
        errors.append(
            f"project_slug {slug!r} must be lowercase letters and digits in words joined by single "
            "hyphens, starting with a letter (e.g. 'tumor-classifier')."
        )
    elif slug.replace("-", "_") in DEPENDENCY_NAMES:
        errors.append(
            f"project_slug {slug!r} is the name of a distribution the project depends on: its "
            "lock could not hold both; choose another name."
        )

    package = answers["package_name"]
    if not (package.isidentifier() and PACKAGE_RE.match(package)):
        errors.append(
            f"package_name {package!r} must be a valid lowercase Python identifier: letters, "
            "digits and underscores, starting with a letter (e.g. 'tumor_classifier')."
        )
    elif keyword.iskeyword(package) or keyword.issoftkeyword(package):
        errors.append(f"package_name {package!r} is a Python keyword; choose another name.")
    elif package in sys.stdlib_module_names or package in RESERVED_PACKAGES:
        errors.append(
            f"package_name {package!r} would shadow the module of that name; choose another name."
        )
    elif package in DEPENDENCY_NAMES:
        errors.append(
            f"package_name {package!r} is a module the project's dependencies install: the "
            "project's commands would run one in place of the other; choose another name."
        )
    elif found := _importable(package):
        errors.append(
            f"package_name {package!r} is already importable here ({found}): "
            "the project's commands could run that module instead; choose another name."
        )

    model_name = answers["registered_model_name"]
    if not MODEL_NAME_RE.match(model_name):
        errors.append(
            f"registered_model_name {model_name!r} must start with a letter and use only letters, "
            "digits, '.', '_' and '-' (at most 128 characters; no spaces, '/', ':' or '@', which "
            "break models:/ URIs)."
        )

    errors += _python_version(answers["python_version"])
    for field, accepted in CHOICES.items():
        if answers[field] not in accepted:
            errors.append(f"{field} {answers[field]!r} must be one of: {', '.join(accepted)}.")
    if answers["dvc_remote"] in CHOICES["dvc_remote"]:
        errors += _dvc_remote(answers["dvc_remote"], answers["dvc_remote_url"])
    return errors


def main() -> int:
    errors = validate(json.loads(ANSWERS_JSON), json.loads(GIVEN_JSON))
    for message in errors:
        print(f"ERROR: {message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
