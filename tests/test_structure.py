"""The generated package's structure: it holds only what its team edits (the machinery is the
mlrig library, which reads every `kind`), within a line budget; bake-time options remove files
rather than lines, and a scikit-learn bake carries nothing of Dask or XGBoost."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from conftest import TEMPLATE
from matrix import PACKAGE

SOURCES = TEMPLATE / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}"
JINJA_BLOCK = re.compile(r"\{%-?\s*if\b")
MAX_JINJA_BLOCKS = 5
# Non-blank, non-comment lines of Python under src/ in the default bake: every one something
# the team edits (the machinery lives in mlrig/).
MAX_PROJECT_LINES = 1500


def bake(tmp_path_factory: pytest.TempPathFactory, model_library: str) -> Path:
    """The package of a bake with this model library."""
    out = tmp_path_factory.mktemp("structure")
    context = {"model_library": model_library}
    project = cookiecutter(str(TEMPLATE), no_input=True, extra_context=context, output_dir=str(out))
    return Path(project) / "src" / PACKAGE


@pytest.fixture(scope="module", params=["xgboost", "scikit-learn"])
def package(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory, request.param)


def _reads_kind(node: ast.AST) -> bool:
    """`x.kind`, `x["kind"]` or `x.get("kind")` (a dataclass declaring `kind` reads nothing)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "kind" and isinstance(node.ctx, ast.Load)
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "kind"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        first = node.args[0] if node.args else None
        return node.func.attr == "get" and isinstance(first, ast.Constant) and first.value == "kind"
    return False


def reads_of_kind(package: Path) -> dict[str, list[str]]:
    """Module -> the expressions in it that read a `kind`."""
    found: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        reads = [ast.unparse(node) for node in ast.walk(tree) if _reads_kind(node)]
        if reads:
            found[path.relative_to(package).as_posix()] = reads
    return found


def test_the_project_reads_no_kind(package: Path) -> None:
    """model.kind, compute.kind and data.producer.kind are read by the library's tables: the
    project only fills them (its models and producers tables)."""
    assert reads_of_kind(package) == {}


def code_lines(path: Path) -> int:
    """Lines that are neither blank nor comments (docstrings count: they are code to keep)."""
    stripped = (line.strip() for line in path.read_text().splitlines())
    return sum(1 for line in stripped if line and not line.startswith("#"))


def test_a_default_bake_is_a_small_project(tmp_path_factory: pytest.TempPathFactory) -> None:
    package = bake(tmp_path_factory, "xgboost")
    lines = {
        path.relative_to(package).as_posix(): code_lines(path) for path in package.rglob("*.py")
    }
    assert sum(lines.values()) <= MAX_PROJECT_LINES, lines


def test_options_remove_files_not_lines() -> None:
    blocks = {
        path.relative_to(SOURCES).as_posix(): len(JINJA_BLOCK.findall(path.read_text()))
        for path in SOURCES.rglob("*.py")
    }
    used = {name: count for name, count in blocks.items() if count}
    assert sum(used.values()) <= MAX_JINJA_BLOCKS, used


def test_a_scikit_learn_bake_has_no_dask_or_xgboost(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    package = bake(tmp_path_factory, "scikit-learn")
    mentions = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if re.search(r"dask|xgboost", path.read_text(), re.IGNORECASE)
    }
    assert mentions == set()
    assert not (package / "backends" / "dask.py").exists()
