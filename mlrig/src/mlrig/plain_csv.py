"""The data checks' profile of a small, plain CSV file, read without pandas (`check` runs
before every `make run`: importing NumPy and pandas would cost it half a second).

Plain means what pandas' `read_csv` reads in one way only, so the profile is the one pandas'
frame gives (`data.profile`): a header of distinct, non-empty names, every row with as many
fields, and each field one of pandas' missing-value markers, a plain decimal number (an
integer of at most 18 digits) or text that pandas keeps as text. Anything else (a larger
file, `inf`, `1_000`, ` 1`, `True`, a ragged row, bytes that are not UTF-8) returns None:
the caller reads the file with pandas, which decides.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from .data import Profile

MAX_BYTES = 2_000_000  # above this, pandas' parser is worth its import
# pandas' default missing-value markers (pandas._libs.parsers.STR_NA_VALUES).
MISSING = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})  # fmt: skip
# A number pandas reads as int64 or float64: an integer of up to 18 digits, or a decimal with
# a point and/or an exponent of up to two digits.
NUMBER = re.compile(r"[+-]?(\d{1,18}|(\d+\.\d*|\.\d+)([eE][+-]?\d{1,2})?|\d+[eE][+-]?\d{1,2})")
# Text pandas may read as something else (booleans, infinities, other spellings of numbers),
# or that holds spaces pandas may strip.
AMBIGUOUS = re.compile(r"(?is)\s.*|.*\s|true|false|[+-]?(inf|infinity|nan)|.*_.*|[+-]?\.?\d.*")


def profile(path: Path, target: str) -> Profile | None:
    """The profile of the CSV file at `path`, or None where pandas must read it."""
    if path.stat().st_size > MAX_BYTES:
        return None
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            rows = [row for row in csv.reader(file, strict=True) if row]  # blank lines skipped
    except (UnicodeDecodeError, csv.Error):
        return None
    if not rows:
        return None
    header, body = rows[0], rows[1:]
    if "" in header or len(set(header)) < len(header) or any(len(r) != len(header) for r in body):
        return None
    numeric, missing, values = {}, {}, {}
    for index, name in enumerate(header):
        values[name] = [row[index] for row in body if row[index] not in MISSING]
        kinds = {_kind(value) for value in values[name]}
        if "ambiguous" in kinds:
            return None
        # Only missing values: pandas reads float64; no rows at all: object.
        numeric[name] = bool(body) and kinds <= {"number"}
        missing[name] = len(body) - len(values[name])
    # As pandas counts them: a label other than 0/1 is bad, and so is any label of a text column.
    labels = [float(value) for value in values[target]] if numeric.get(target) else []
    return Profile(
        rows=len(body),
        numeric=numeric,
        missing=missing,
        bad_labels=sum(label not in (0, 1) for label in labels)
        + (0 if numeric.get(target, True) else len(values[target])),
        class_rows={label: labels.count(label) for label in (0, 1)},
    )


def _kind(value: str) -> str:
    """ "number" (pandas reads it as one), "text" (pandas keeps it as text) or "ambiguous"."""
    if NUMBER.fullmatch(value):
        return "number"
    return "ambiguous" if AMBIGUOUS.fullmatch(value) else "text"
