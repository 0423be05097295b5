"""The registry's names a request may carry: version numbers and aliases (no MLflow import, so
the webhook receiver checks them without loading the registry)."""

from __future__ import annotations

import re

# \A...\Z, not ^...$: `$` also matches before a final newline ("3\n").
VERSION_RE = re.compile(r"\A[1-9][0-9]{0,9}\Z")
ALIAS_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
