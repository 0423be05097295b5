"""Configuration: a project's conf/ composed and typed by its model kinds, producers and the
library's backends; bad input is refused naming the key and the rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from demo.project import BlobsParams, BoostedParams, LinearParams
from omegaconf import OmegaConf

from mlrig import ConfigError, Project
from mlrig.config import MonitorConfig, compose, flatten
from mlrig.job import mlflow_params_to_overrides


def test_params_yaml_is_the_composition_of_conf(project: Project) -> None:
    expected = OmegaConf.to_container(compose(project.conf_dir), resolve=True)
    assert yaml.safe_load((project.root / "params.yaml").read_text()) == expected


def test_sections_are_typed_by_their_kind(project: Project) -> None:
    cfg = project.composed(["model=boosted", "model.max_depth=5", "seed=7"])
    assert isinstance(cfg.model, BoostedParams)
    assert (cfg.model.max_depth, cfg.seed) == (5, 7)
    assert flatten(cfg.raw)["model.max_depth"] == "5"
    assert isinstance(project.composed(["model.C=0.25"]).model, LinearParams)
    assert project.composed([]).data.producer == BlobsParams(kind="blobs", rows=600)
    assert project.composed(["data=partitions"]).data.producer.seed == 42  # ${seed} resolved


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.max_iter=many", "invalid model.max_iter: Value 'many'"),
        ("model.C=0", "model.C must be > 0"),
        ("data.test_size=1.5", "data.test_size"),
        ("model.kind=catboost", "model.kind 'catboost' is not one of ['boosted', 'linear']"),
        ("compute.kind=spark", "compute.kind 'spark' is not one of ['dask', 'local']"),
        ("data.producer.kind=scraper", "data.producer.kind 'scraper' is not one of"),
        ("data.producer.rows=lots", "invalid data.producer.rows: Value 'lots'"),
        ("+data.producer.row=3", "unknown key data.producer.row: did you mean data.producer.rows?"),
        ("data.producer=7", "data.producer must be a mapping with a kind, or null"),
    ],
)
def test_bad_values_name_the_key(project: Project, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        project.composed([override])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.max_iters=3", "unknown key model.max_iters"),  # Hydra's "use +" is no fix
        ("+model.max_iters=3", "unknown key model.max_iters"),  # the schema refuses it too
        ("+data.featurs=[a]", "unknown key data.featurs: did you mean data.features?"),
        ("+seeed=1", "unknown key seeed: did you mean seed?"),
        ("modl=x", "unknown key modl: did you mean model?"),
        ("model=nope", "Could not find 'model/nope'; the choices: "),
    ],
)
def test_a_typo_is_refused_with_the_likeliest_key(
    project: Project, override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        project.composed([override])
    assert "\n" not in str(refused.value)


def test_allowing_missing_values_needs_a_model_kind_that_handles_them(project: Project) -> None:
    with pytest.raises(ConfigError, match="linear does not"):
        project.composed(["data.missing_values=allow"])
    assert project.composed(["data.missing_values=allow", "model=boosted"])
    with pytest.raises(ConfigError, match="missing_values must be refuse or allow"):
        project.composed(["data.missing_values=skip"])


def test_params_yaml_is_read_from_the_current_folder(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DVC experiment's stages run in a workspace of its own: its params.yaml counts."""
    with pytest.raises(ConfigError, match=r"params\.yaml not found: run from the project root"):
        monkeypatch.chdir(tmp_path)
        project.load_params()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("model:\n  kind: [linear\n", r"params\.yaml is not valid YAML \(line 3, column 1\)"),
        ("model: {kind: linear\n\tseed: 1\n", r"params\.yaml is not valid YAML \(line 2"),
    ],
)
def test_a_params_yaml_that_is_not_yaml_is_one_line(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, said: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(text)
    with pytest.raises(ConfigError, match=said) as refused:
        project.load_params()
    assert "\n" not in str(refused.value) and "`git checkout params.yaml`" in str(refused.value)


def test_mlflow_run_extra_params_become_overrides() -> None:
    args = ["model=boosted", "--model.max_depth", "4", "--multirun", "seed=1,2"]
    assert mlflow_params_to_overrides(args) == [
        "model=boosted",
        "model.max_depth=4",
        "--multirun",
        "seed=1,2",
    ]
    with pytest.raises(ConfigError, match="no value"):
        mlflow_params_to_overrides(["--seed"])


def test_a_project_without_conf_monitor_gets_the_defaults(project: Project) -> None:
    raw = OmegaConf.to_container(compose(project.conf_dir), resolve=True)
    del raw["monitor"]  # a project baked before conf/monitor/ existed
    assert project.from_container(raw).monitor == MonitorConfig()
    raw["monitor"] = {"bins": 1}
    with pytest.raises(ConfigError, match=r"monitor\.bins must be between 2 and 100"):
        project.from_container(raw)
    raw["monitor"] = {"alert": {"webhok_env": "X"}}
    with pytest.raises(ConfigError, match=r"did you mean monitor\.alert\.webhook_env"):
        project.from_container(raw)
