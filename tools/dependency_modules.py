"""The names a baked project's dependencies install, for the pre-generation hook to refuse as
a package name or project slug (a package named `optuna` would be imported instead of Optuna).

Run with the interpreter of a default bake set up with every dependency group (`make setup`
then `make test`, as the end-to-end test does):

    <bake>/.venv/bin/python tools/dependency_modules.py --project <package>  # add to the list
    <bake>/.venv/bin/python tools/dependency_modules.py --project <package> --check

The list is the top-level modules of every installed distribution and the distributions'
names (normalised to identifiers), without the project itself and private (`_x`) modules.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
from pathlib import Path

HOOK = Path(__file__).resolve().parents[1] / "hooks" / "pre_gen_project.py"
BLOCK = re.compile(r'(DEPENDENCY_NAMES_LISTED = """\n)(.*?)(""")', re.S)
WIDTH = 96


def installed(project: str) -> set[str]:
    """What the running interpreter's distributions install, but `project`'s own names."""
    names: set[str] = set()
    for module, distributions in importlib.metadata.packages_distributions().items():
        if project not in {normalised(d) for d in distributions}:
            names.add(module)
    for distribution in importlib.metadata.distributions():
        name = normalised(distribution.metadata["Name"])
        if name != project:
            names.add(name)
    return {name for name in names if name.isidentifier() and not name.startswith("_")}


def normalised(distribution: str) -> str:
    return re.sub(r"[-_.]+", "_", distribution).lower()


def listed() -> set[str]:
    found = BLOCK.search(HOOK.read_text())
    if found is None:
        raise SystemExit(f"{HOOK}: no DEPENDENCY_NAMES_LISTED block")
    return set(found[2].split())


def block(names: set[str]) -> str:
    lines, line = [], ""
    for name in sorted(names):
        if len(line) + 1 + len(name) > WIDTH:
            lines.append(line)
            line = ""
        line += f" {name}" if line else name
    return "".join(f"{text}\n" for text in [*lines, line])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True, help="the bake's package name")
    parser.add_argument("--check", action="store_true", help="only check the hook's list")
    options = parser.parse_args(argv)
    names = installed(normalised(options.project))
    if options.check:
        missing = sorted(names - listed())
        if missing:
            print(
                f"the hook's DEPENDENCY_NAMES_LISTED lacks {missing}: run {__file__} with this venv"
            )
            return 1
        return 0
    kept = names | listed()  # names of other bakes' venvs (another Python, the CUDA build) stay
    HOOK.write_text(BLOCK.sub(lambda m: m[1] + block(kept) + m[3], HOOK.read_text()))
    print(f"{HOOK}: {len(kept)} names")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
