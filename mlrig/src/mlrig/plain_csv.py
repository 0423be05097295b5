"""The data checks' profile of a small, plain CSV file, read without pandas (`check` runs
before every `make run`: importing NumPy and pandas would cost it half a second).

Plain means what pandas' `read_csv` reads in one way only, so the profile is the one pandas'
frame gives (`data.profile`): a header of distinct, non-empty names, every row with as many
fields, and each field one of pandas' missing-value markers, a plain number in ASCII digits
(see INTEGER and DECIMAL) or text that pandas keeps as text. Anything else (a larger file,
`inf`, `1_000`, ` 1`, `True`, `١٢`, a ragged row, a line of spaces, control characters, bytes
that are not UTF-8, a decimal label) returns None: the caller reads the file with pandas,
which decides.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from .data import Profile

MAX_BYTES = 2_000_000  # above this, pandas' parser is worth its import
# pandas' default missing-value markers (pandas._libs.parsers.STR_NA_VALUES).
MISSING = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})  # fmt: skip
# Numbers pandas reads as int64 or float64 under every pandas the project allows: ASCII
# digits only; an integer of up to 18 digits, or a decimal of up to 25 digits, 18 of them
# before the point (Python's repr of a float writes 17 significant ones), with a point and/or
# an exponent of up to two digits (pandas 2.x reads a decimal with 21 digits before its point
# as text). Its value may differ from Python's in the last bit: only integer labels count.
INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
DECIMAL = re.compile(
    r"[+-]?(?P<mantissa>[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))([eE][+-]?[0-9]{1,2})?"
)
# Text pandas may read as something else (booleans, infinities, other spellings of numbers,
# digits of other scripts), or that holds spaces pandas may strip.
AMBIGUOUS = re.compile(r"(?is)\s.*|.*\s|true|false|[+-]?(inf|infinity|nan)|.*_.*|[+-]?\.?\d.*")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # pandas' C parser may cut a field there


def profile(path: Path, target: str) -> Profile | None:
    """The profile of the CSV file at `path`, or None where pandas must read it."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        with path.open(newline="", encoding="utf-8-sig") as file:
            text = file.read()
        if CONTROL.search(text):
            return None
        rows = [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if row]
    except (OSError, UnicodeDecodeError, csv.Error):  # pandas says what is wrong
        return None
    # pandas skips a line of spaces and tabs: the csv module reads it as a field.
    if not rows or any(len(row) == 1 and not row[0].strip(" \t") for row in rows):
        return None
    header, body = rows[0], rows[1:]
    if "" in header or len(set(header)) < len(header) or any(len(r) != len(header) for r in body):
        return None
    numeric, missing, values = {}, {}, {}
    for index, name in enumerate(header):
        values[name] = [row[index] for row in body if row[index] not in MISSING]
        kinds = {_kind(value) for value in values[name]}
        if "ambiguous" in kinds or (name == target and "decimal" in kinds):
            return None  # a decimal label: one parser may read 1, the other 0.9999999999999999
        # Only missing values: pandas reads float64; no rows at all: object.
        numeric[name] = bool(body) and kinds <= {"integer", "decimal"}
        missing[name] = len(body) - len(values[name])
    # As pandas counts them: a label other than 0/1 is bad, and so is any label of a text column.
    labels = [int(value) for value in values[target]] if numeric.get(target) else []
    return Profile(
        rows=len(body),
        numeric=numeric,
        missing=missing,
        bad_labels=sum(label not in (0, 1) for label in labels)
        + (0 if numeric.get(target, True) else len(values[target])),
        class_rows={label: labels.count(label) for label in (0, 1)},
    )


def _kind(value: str) -> str:
    """ "integer" or "decimal" (pandas reads it as that number), "text" (pandas keeps it as
    text) or "ambiguous"."""
    if INTEGER.fullmatch(value):
        return "integer"
    decimal = DECIMAL.fullmatch(value)
    whole, _, fraction = decimal["mantissa"].partition(".") if decimal else ("", "", "")
    if decimal and len(whole) <= 18 and len(whole) + len(fraction) <= 25:
        return "decimal"
    return "ambiguous" if AMBIGUOUS.fullmatch(value) else "text"
