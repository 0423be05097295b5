"""The command line: `python -m {{ cookiecutter.package_name }}.cli <command>` (`--help` lists
them). The commands are mlrig's, run on this project; add your own to `project.py`."""

import sys

import mlrig

from .project import PROJECT


def main(argv: list[str] | None = None) -> int:
    return mlrig.main(PROJECT, argv)


if __name__ == "__main__":
    sys.exit(main())
