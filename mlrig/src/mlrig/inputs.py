"""A job's inputs, checked before DVC or MLflow writes anything: the configuration (conf/ with
the overrides `dvc exp run -S` would apply, every combination of a sweep) and the raw data.

`make run` and `make exp` run these checks first: DVC rewrites params.yaml and a `.dvc`
pointer, and removes a stage's outputs, before the stage's own checks can refuse.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from . import plain_csv
from .config import PARAMS_FILE, Config, ConfigError, DataConfig
from .data import (
    check_columns,
    check_profile,
    missing_raw,
    numeric_columns,
    profile,
    read_table,
)

if TYPE_CHECKING:
    from .project import Project


def combinations(overrides: list[str]) -> list[list[str]]:
    """The override lists a sweep (`model.max_depth=3,5`, `range(...)`) stands for."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(f"cannot parse the overrides {overrides}: {err}") from err
    choices = [
        [f"{o.get_key_element()}={value}" for value in o.sweep_string_iterator()]
        if o.is_sweep_override()
        else [o.input_line]
        for o in parsed
    ]
    return [list(chosen) for chosen in itertools.product(*choices)]


def check_raw(data: DataConfig) -> str:
    """The raw data's checks: present, enough rows, the schema, the values (a Parquet folder:
    its schema only; it is generated, or too large to read here)."""
    path = Path(data.raw_path)
    if not path.exists():
        raise missing_raw(path)
    if path.is_dir():
        import pyarrow.dataset as ds

        schema = ds.dataset(path, format="parquet").schema
        check_columns(numeric_columns(schema.empty_table().to_pandas().dtypes), data, str(path))
        return f"{path}: the schema"
    seen = plain_csv.profile(path, data.target) or profile(read_table(path), data.target)
    check_profile(seen, data, str(path), min_rows=data.min_rows)
    return f"{path}: {seen.rows} rows"


def check_inputs(project: Project, overrides: list[str] | None = None) -> str:
    """Check params.yaml (None) or each composition of conf/ with the overrides (a list, empty
    too: `dvc exp run` always composes), then the raw data of each distinct data section; say
    what was checked."""
    configs: list[Config] = (
        [project.load_params()]
        if overrides is None
        else [project.composed(chosen) for chosen in combinations(overrides)]
    )
    checked = {}
    for cfg in configs:
        if cfg.data.raw_path not in checked:
            checked[cfg.data.raw_path] = check_raw(cfg.data)
    source = PARAMS_FILE if overrides is None else f"{len(configs)} composition(s) of conf/"
    return f"Inputs checked: {source}; {'; '.join(checked.values())}."
