"""Parse a build context's Dockerfile as BuildKit would read its instructions: every logical
line (continuations joined, comments dropped) starts with a known instruction, FROM before any
but ARG, and every COPY/ADD source from the context exists. Prints one line; exits 1 on the
first problem."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip


def instructions(text: str) -> list[tuple[str, str]]:
    logical, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        logical.append((keyword.upper(), rest.strip()))
        pending = ""
    if pending:
        raise ValueError("the last line ends with a continuation")
    return logical


def check(context: Path) -> list[tuple[str, str]]:
    dockerfile = context / "Dockerfile"
    if not dockerfile.is_file():
        raise ValueError(f"no Dockerfile in the build context {context}")
    parsed = instructions(dockerfile.read_text())
    unknown = [keyword for keyword, _ in parsed if keyword not in INSTRUCTIONS]
    if unknown:
        raise ValueError(f"unknown instructions {unknown}")
    first = next((keyword for keyword, _ in parsed if keyword != "ARG"), None)
    if first != "FROM":
        raise ValueError(f"the first instruction is {first}, not FROM")
    for keyword, rest in parsed:
        if keyword in ("COPY", "ADD"):
            parts = [p for p in shlex.split(rest) if not p.startswith("--")]
            for source in parts[:-1]:
                if not (context / source).exists():
                    raise ValueError(f"{keyword} source {source} is not in the build context")
    return parsed


if __name__ == "__main__":
    context, tags = Path(sys.argv[1]), sys.argv[2]
    try:
        parsed = check(context)
    except ValueError as problem:
        sys.exit(f"docker build {context}: {problem}")
    base = next(rest for keyword, rest in parsed if keyword == "FROM")
    print(f"docker build {context}: {len(parsed)} instructions, FROM {base}; tag {tags}")
