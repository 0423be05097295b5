"""`check`'s profile of a small CSV file without pandas (mlrig.plain_csv) is the profile of the
frame pandas reads, or None (pandas then reads it): on the listed corner cases and on
generated files of random fields. (The installed pandas only: the same generators were run by
hand against pandas 2.2.3 and 2.3.3, which the library also allows, with no difference.)"""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from mlrig import plain_csv
from mlrig.data import profile

CASES = {
    "numbers": "a,b,target\n1,2.5,0\n-3,+.5e2,1\n007,1.,1\n",
    "floats as Python writes them": "a,target\n0.12345678901234568,0\n-1.2345678901234567e-05,1\n",
    "missing markers": "a,b,target\n"
    + "".join(f"{marker},1,{i % 2}\n" for i, marker in enumerate(sorted(plain_csv.MISSING))),
    "all missing": "a,target\n,0\nNA,1\n",
    "quoted": 'a,target\n"1",0\n"",1\n"x,y",1\n',
    "text column": "a,target\nx,0\n1,1\n",
    "text target": "a,target\n1,yes\n2,no\n3,\n",
    "other labels": "a,target\n1,2\n2,1.0\n3,0\n4,-1\n",
    "booleans": "a,target\nTrue,0\nFalse,1\n",
    "infinity": "a,target\ninf,0\n-Infinity,1\n",
    "NAN": "a,target\nNAN,0\n1,1\n",
    "spaces": "a,target\n 1,0\n2 ,1\n",
    "underscore": "a,target\n1_000,0\n2,1\n",
    "long integer": "a,target\n1234567890123456789,0\n1,1\n",
    "long exponent": "a,target\n1e400,0\n1,1\n",
    "ragged": "a,target\n1,0,5\n2,1\n",
    "index column": "a,target\n9,1,0\n8,2,1\n",
    "duplicate header": "a,a,target\n1,2,0\n",
    "empty header": "a,,target\n1,2,0\n",
    "header only": "a,target\n",
    "blank lines and CRLF": "a,target\r\n\r\n1,0\r\n\r\n2,1\r\n",
    "BOM": "\ufeffa,target\n1,0\n2,1\n",
    "no target": "a,b\n1,2\n",
    "dates": "a,target\n2024-01-01,0\n2024-01-02,1\n",
    "other scripts' digits": "a,target\n١٢,١\n3,٠\n१२,0\n１,1\n",
    "decimal labels": "a,target\n1,0.9999999999999999\n2,1.0\n3,0\n",
    "long whole part": "a,target\n" + "1" * 21 + ".5,0\n2,1\n",
    "long mantissa": "a,target\n" + "9" * 309 + ".0,0\n0." + "0" * 300 + "1,1\n",
    "NUL": "a,target\n1,0\n\x00,1\n2,1\n",
    "line of spaces first": " \ntarget\n0\n1\n",
    "line of tabs": "target\n0\n\t\n1\n",
}


def compare(path: Path) -> bool:
    """True when plain_csv read the file; fails if its profile is not pandas'."""
    mine = plain_csv.profile(path, "target")
    if mine is not None:
        assert mine == profile(pd.read_csv(path), "target"), path.read_text()
    return mine is not None


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_each_corner_case_is_read_as_pandas_reads_it_or_left_to_pandas(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text, newline="")
    compare(path)


def test_a_plain_file_is_read_without_pandas_and_others_are_left_to_it(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    for name, plain in (("numbers", True), ("floats as Python writes them", True),
                        ("text target", True), ("booleans", False),
                        ("ragged", False), ("duplicate header", False),
                        ("other scripts' digits", False), ("NUL", False),
                        ("line of spaces first", False)):  # fmt: skip
        path.write_text(CASES[name], newline="")
        assert compare(path) is plain, name
    path.write_bytes(b"a,target\n\xff,0\n")  # not UTF-8
    assert plain_csv.profile(path, "target") is None
    path.write_text("a,target\n" + "1,0\n" * (plain_csv.MAX_BYTES // 4 + 1))
    assert plain_csv.profile(path, "target") is None
    assert plain_csv.profile(tmp_path, "target") is None  # cannot be opened: pandas says why


TOKENS = ["0", "1", "2", "-1", "+3", "007", "1.5", ".5", "1.", "2e3", "1E-2", "-0", "x", "abc",
          "-", "", "NA", "nan", "NaN", "None", "null", "<NA>", "#N/A", "True", "false", "inf",
          "1_0", " 1", "1 ", '"1"', '""', '"a,b"', "1e99", "99999999999999999999", "0x1F",
          "2024-01-01", "é", "١", "0.9999999999999999", "1.0", "\x00", " ", "\t",
          "1234567890.123456"]  # fmt: skip


def test_generated_files_are_read_as_pandas_reads_them_or_left_to_it(tmp_path: Path) -> None:
    """Random fields (numbers, markers, text, quoting, traps), mostly of one kind per column
    as real data is; each file's profile must be pandas' whenever plain_csv reads it."""
    rng, path, read = random.Random(31), tmp_path / "data.csv", 0
    for _ in range(400):
        columns = rng.randint(1, 4)
        header = [f"c{i}" for i in range(columns - 1)] + ["target"]
        pools = [rng.sample(TOKENS, rng.randint(1, 4)) for _ in header]
        rows = [",".join(rng.choice(pool) for pool in pools) for _ in range(rng.randint(0, 6))]
        path.write_text("\n".join([",".join(header), *rows]) + "\n", encoding="utf-8")
        try:
            pd.read_csv(path)
        except (ValueError, pd.errors.ParserError):
            assert plain_csv.profile(path, "target") is None  # pandas refuses it: so must we
            continue
        read += compare(path)
    assert read > 100  # the fast path was taken often enough to mean something
