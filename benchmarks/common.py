"""What the benchmarks share: the baked project's package, found from its pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path


def package() -> str:
    """The package of the baked project in the current folder."""
    pyproject = tomllib.loads(Path("pyproject.toml").read_text())
    return str(pyproject["tool"]["importlinter"]["root_package"])
