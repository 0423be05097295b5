"""The template's options (cookiecutter.json), the all-pairs bake matrix, and what every bake
must be: its exact file set, fully rendered, parseable, ruff-clean and committed."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import yaml
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config

from conftest import TEMPLATE, load_hook

PRE_GEN = load_hook("pre_gen_project")
Choice = dict[str, str]
Pair = tuple[tuple[str, str], tuple[str, str]]

# Choice variables: what the hook accepts (cookiecutter.json holds only each one's default,
# the first value here).
OPTIONS: dict[str, list[str]] = {
    "python_version": list(PRE_GEN.PYTHON_VERSIONS),
    **{name: list(values) for name, values in PRE_GEN.CHOICES.items()},
}
PACKAGE = "tumor_classifier"

# Files in every bake, and the files each option value adds (paths in the baked project).
COMMON_PACKAGE = [
    "__init__.py", "cli.py", "data.py", "metrics.py", "plots.py", "project.py", "report.py",
    "models/__init__.py", "models/logistic_regression.py", "stages/__init__.py",
    "stages/prepare.py", "stages/train.py",
]  # fmt: skip
COMMON = {
    ".cruft.json", ".devcontainer/devcontainer.json", ".dvc/.gitignore", ".dvc/config",
    ".dvc/plots/confusion_counts.json",
    ".dvcignore", ".env.example", ".gitignore", ".pre-commit-config.yaml",
    ".python-version", "LICENSE", "MLproject", "Makefile", "README.md", "tasks.py",
    "conf/config.yaml", "conf/tune.yaml", "conf/search/logistic_regression.yaml",
    "conf/compute/local.yaml", "conf/data/breast_cancer.yaml", "conf/data/synthetic.yaml",
    "conf/monitor/default.yaml", "conf/experiment/example.yaml",
    "conf/model/logistic_regression.yaml",
    "conf/registry/default.yaml", "conf/tracking/default.yaml", "data/.gitignore",
    "data/raw/.gitignore", "data/raw/breast_cancer.csv.dvc", "dvc.yaml", "models/.gitignore",
    "notebooks/start.ipynb",
    "params.yaml", "pyproject.toml", "python_env.yaml", "tests/conftest.py", "tests/test_cli.py",
    "tests/test_config.py", "tests/test_data.py", "tests/test_extending.py",
    "tests/test_models.py", "tests/test_notebooks.py", "tests/test_pipeline.py",
    "tests/test_stages.py", "tests/test_tasks.py",
} | {f"src/{PACKAGE}/{name}" for name in COMMON_PACKAGE}  # fmt: skip
OPTIONAL = {
    ("model_library", "xgboost"): {
        f"src/{PACKAGE}/models/xgboost.py", "tests/test_dask.py", "conf/compute/dask.yaml",
        "conf/model/xgboost.yaml", "conf/search/xgboost.yaml",
    },
    ("ci_workflows", "yes"): {
        ".github/dependabot.yml", ".github/workflows/ci.yml", ".github/workflows/promote.yml",
        ".github/workflows/retrain.yml", ".github/workflows/score.yml",
    },
    ("team_server", "yes"): {
        "deploy/tracking-server/.env.example", "deploy/tracking-server/Dockerfile",
        "deploy/tracking-server/basic_auth.ini", "deploy/tracking-server/docker-compose.yml",
        "deploy/tracking-server/mlflow.env.example", "deploy/tracking-server/mlflow.service",
        "tests/test_team_server.py",
    },
}  # fmt: skip


def expected_files(choice: Choice) -> set[str]:
    """The exact file set of a bake with these option values."""
    files = set(COMMON)
    for (name, value), extra in OPTIONAL.items():
        if choice[name] == value:
            files |= extra
    return files


def answers(choice: Choice) -> dict[str, str]:
    """Every answer of a --no-input bake with these option values (defaults rendered)."""
    context = generate_context(
        context_file=str(TEMPLATE / "cookiecutter.json"), extra_context=dict(choice)
    )
    return prompt_for_config(context, no_input=True)


def valid(choice: Choice) -> bool:
    """The validity filter: the template's own pre_gen check on the rendered answers."""
    return not PRE_GEN.validate(answers(choice))


def _pairs(choice: Choice) -> set[Pair]:
    items = sorted(choice.items())
    return set(itertools.combinations(items, 2))


def combinations(options: dict[str, list[str]], accept: Callable[[Choice], bool]) -> list[Choice]:
    """Every accepted combination of these option values, defaults first."""
    names = list(options)
    every = (
        dict(zip(names, values, strict=True)) for values in itertools.product(*options.values())
    )
    return [choice for choice in every if accept(choice)]


def all_pairs(candidates: list[Choice]) -> list[Choice]:
    """A few of these combinations covering every pair of values that any of them has
    (greedy; deterministic; the first row is the first candidate)."""
    rows: list[Choice] = []
    uncovered = set().union(*(_pairs(choice) for choice in candidates))
    while uncovered:
        best = max(candidates, key=lambda choice: len(_pairs(choice) & uncovered))
        rows.append(best)
        uncovered -= _pairs(best)
    return rows


# Options that no command reads (LICENSE, .cruft.json and pyproject's license field): bakes
# that differ only in these set up and test alike.
UNREAD = ("license",)


def read_options(choice: Choice) -> Choice:
    return {name: value for name, value in choice.items() if name not in UNREAD}


def bake_matrix(options: dict[str, list[str]], accept: Callable[[Choice], bool]) -> list[Choice]:
    """All pairs of option values (the first row all defaults), in rows whose read options
    take only the combinations that all pairs of those need; the unread values are spread
    over those combinations."""
    unread = {name: values for name, values in options.items() if name in UNREAD}
    defaults = {name: values[0] for name, values in unread.items()}
    bases = all_pairs(combinations(read_options(options), lambda c: accept(c | defaults)))
    spread = [base | rest for base in bases for rest in combinations(unread, lambda _: True)]
    return all_pairs([choice for choice in spread if accept(choice)])


def label(choice: Choice) -> str:
    """A short test id: the non-default values, or 'defaults'."""
    changed = [f"{k}={v}" for k, v in choice.items() if v != OPTIONS[k][0]]
    return ",".join(changed) or "defaults"


# Leftover Jinja in either spacing; `${...}` (Hydra, DVC) and `${{` (GitHub) are legitimate.
JINJA = re.compile(r"(?<!\$)\{\{|\{%|\{#")


def files_of(project: Path) -> set[str]:
    return {
        p.relative_to(project).as_posix()
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }


def check_rendered_and_parseable(project: Path) -> None:
    for path in project.rglob("*"):
        if not path.is_file() or ".git" in path.relative_to(project).parts:
            continue
        text = path.read_text()
        assert not JINJA.search(text), f"leftover Jinja in {path.relative_to(project)}"
        if path.suffix in (".yaml", ".yml", ".dvc") or path.name == "MLproject":
            yaml.safe_load(text)
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix in (".json", ".ipynb"):
            json.loads(text)
        elif path.suffix == ".py":
            compile(text, str(path), "exec")


def ruff(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
        cwd=project,
        capture_output=True,
        text=True,
    )


def check_ruff_clean(project: Path) -> None:
    check = ruff(project, "check")
    assert check.returncode == 0, check.stdout
    formatted = ruff(project, "format", "--check")
    assert formatted.returncode == 0, formatted.stdout


def check_committed(project: Path) -> None:
    """post_gen committed every file: a clean tree that tracks exactly the bake's files."""
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True
    )
    assert status.returncode == 0 and status.stdout == ""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=project, capture_output=True, text=True, check=True
    )
    assert set(tracked.stdout.split()) == files_of(project)
