"""What the benchmarks share: the baked project in the current folder -- its package, found
from its pyproject.toml, and its wiring into mlrig (`<package>.project.PROJECT`)."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any


def package() -> str:
    """The package of the baked project in the current folder."""
    pyproject = tomllib.loads(Path("pyproject.toml").read_text())
    return str(pyproject["tool"]["importlinter"]["root_packages"][0])


def project() -> Any:
    """The baked project's `mlrig.Project`."""
    return importlib.import_module(f"{package()}.project").PROJECT
