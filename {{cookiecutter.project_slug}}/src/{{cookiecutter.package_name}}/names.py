"""The registry's names a request may carry: version numbers and aliases (no MLflow import, so
the webhook receiver checks them without loading the registry)."""

from __future__ import annotations

import re

VERSION_RE = re.compile(r"^[1-9][0-9]{0,9}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
