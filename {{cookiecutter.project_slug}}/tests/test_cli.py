"""The command line: every command has help, an unknown or missing command is an argparse
error, and parsing one imports none of the heavy stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from {{ cookiecutter.package_name }}.cli import main


@pytest.mark.parametrize(("args", "message"), [(["deploy"], "invalid choice"), ([], "required")])
def test_unknown_or_missing_command_is_refused(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_help_lists_the_commands(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    for name in ("train", "data", "check", "validate", "promote", "doctor", "sync", "tune"):
        assert f"    {name} " in listed, name
{%- if cookiecutter.ci_workflows == "yes" %}
    assert "webhook-receive" in listed  # the project's own commands join the table
{%- endif %}


def test_the_command_line_starts_without_the_heavy_stack() -> None:
    """Parsing a command imports none of the heavy stack: each command imports what it needs
    (and processes that import the main module again, such as a cluster's workers, stay light)."""
    heavy = ("mlflow", "matplotlib", "sklearn", "xgboost", "dask", "optuna", "pandas", "numpy")
    script = (
        "import sys\n"
        "from mlrig import cli\n"
        "from {{ cookiecutter.package_name }}.project import PROJECT\n"
        "cli.parser(PROJECT).parse_args(['check'])\n"
        f"print(sorted(name for name in {heavy!r} if name in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout
