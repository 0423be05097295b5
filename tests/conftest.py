"""Shared helpers for the template's tests."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

TEMPLATE = Path(__file__).resolve().parents[1]
DEFAULT_SLUG = "tumor-classifier"


@pytest.fixture(autouse=True, scope="session")
def _git_identity() -> None:
    """Baked projects get a first commit; CI machines may have no git identity."""
    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "ml-template tests")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "tests@ml-template.invalid")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


def load_hook(name: str) -> ModuleType:
    """Import a hook as a module (unrendered: its Jinja lives only inside a string)."""
    spec = importlib.util.spec_from_file_location(name, TEMPLATE / "hooks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
