"""`make run` and `make exp` check the configuration and the raw data before DVC writes: each
refusal is one line naming the problem and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import RAW

from mlrig import ConfigError, DataError, Project
from mlrig.inputs import check_inputs, combinations


def test_a_sweep_stands_for_each_combination() -> None:
    assert combinations(["seed=1,2", "+x=3", "data.test_size=0.1"]) == [
        ["seed=1", "+x=3", "data.test_size=0.1"],
        ["seed=2", "+x=3", "data.test_size=0.1"],
    ]
    assert len(combinations(["seed=range(0,3)", "seed=4,5"])) == 6


def test_valid_inputs_say_what_was_checked(project: Project, workspace: Path) -> None:
    assert check_inputs(project) == f"Inputs checked: params.yaml; {RAW}: 600 rows."
    assert check_inputs(project, ["seed=1,2"]).startswith(
        "Inputs checked: 2 composition(s) of conf/"
    )
    assert check_inputs(project, []).startswith("Inputs checked: 1 composition(s) of conf/")


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["seed=1,x"], ConfigError, "seed must be an integer"),  # one bad combination of two
        (["+data.min_row=3"], ConfigError, "did you mean data.min_rows?"),
        (["data.test_size=0.9"], ConfigError, "data.test_size + data.valid_size must be < 1"),
    ],
)
def test_each_combination_is_checked(
    project: Project, workspace: Path, overrides: list[str], error: type, message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        check_inputs(project, overrides)


def test_missing_or_bad_raw_data_is_refused_with_the_fix(project: Project, workspace: Path) -> None:
    raw = Path(RAW)
    raw.write_text(raw.read_text().splitlines()[0] + "\n")
    with pytest.raises(DataError, match="has 0 data rows; data\\.min_rows is 100"):
        check_inputs(project)
    raw.unlink()
    with pytest.raises(DataError, match=r"is missing: run `make data`"):
        check_inputs(project)


def test_a_parquet_folder_is_checked_by_its_schema(project: Project, workspace: Path) -> None:
    folder = Path(RAW)
    folder.unlink()
    folder.mkdir()
    pd.DataFrame({"a": [1.0]}).to_parquet(folder / "part-0.parquet")
    with pytest.raises(DataError, match=r"missing columns \['f0'"):
        check_inputs(project)
