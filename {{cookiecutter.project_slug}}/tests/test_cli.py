"""The command line is one table: every command has help, an unknown or missing command is an
argparse error, and nothing runs by default."""

from __future__ import annotations

import subprocess
import sys

import pytest

from {{ cookiecutter.package_name }}.cli import COMMANDS, main, parser


@pytest.mark.parametrize(("args", "message"), [(["deploy"], "invalid choice"), ([], "required")])
def test_unknown_or_missing_command_is_refused(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_help_lists_every_command_of_the_table(capsys) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    listed = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    for name, command in COMMANDS.items():
        assert f"{name} {' '.join(command.help.split())}" in listed


def test_the_command_line_starts_without_the_heavy_stack() -> None:
    """Parsing a command imports none of the heavy stack: each handler imports what it needs
    (and processes that import the main module again, such as a cluster's workers, stay light)."""
    heavy = ("mlflow", "matplotlib", "sklearn", "xgboost", "dask", "optuna")
    script = (
        "import sys\n"
        "from {{ cookiecutter.package_name }}.cli import parser\n"
        "parser().parse_args(['check'])\n"
        f"print(sorted(name for name in {heavy!r} if name in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout
