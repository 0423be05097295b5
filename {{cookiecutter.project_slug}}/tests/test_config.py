"""Configuration: conf/ is the single source, params.yaml mirrors it, bad input is refused."""

from __future__ import annotations

import re

import pytest
import yaml
from omegaconf import OmegaConf

from {{ cookiecutter.package_name }}.config import PROJECT_ROOT, ConfigError, compose, flatten
from {{ cookiecutter.package_name }}.job import mlflow_params_to_overrides
from {{ cookiecutter.package_name }}.models.logistic_regression import LogisticRegressionParams
{%- if cookiecutter.model_library == "xgboost" %}
from {{ cookiecutter.package_name }}.models.xgboost import XGBoostParams
{%- endif %}
from {{ cookiecutter.package_name }}.settings import composed, from_container, load_params


def test_params_yaml_is_the_composition_of_conf() -> None:
    expected = OmegaConf.to_container(compose(), resolve=True)
    assert yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text()) == expected


def test_mlproject_defaults_match_conf() -> None:
    spec = yaml.safe_load((PROJECT_ROOT / "MLproject").read_text())
    parameters = spec["entry_points"]["main"]["parameters"]
    cfg = load_params(PROJECT_ROOT / "params.yaml")
    assert parameters["model"]["default"] == cfg.model.kind
    assert parameters["seed"]["default"] == str(cfg.seed)
    command = spec["entry_points"]["main"]["command"]
    assert all(name + "={" + name + "}" in command for name in parameters)


def test_overrides_are_typed_and_validated() -> None:
{%- if cookiecutter.model_library == "xgboost" %}
    cfg = from_container(compose(["model.max_depth=3", "seed=7"]))
    assert isinstance(cfg.model, XGBoostParams)
    assert (cfg.model.max_depth, cfg.seed) == (3, 7)
    assert flatten(cfg.raw)["model.max_depth"] == "3"
{%- else %}
    cfg = from_container(compose(["model.C=0.25", "seed=7"]))
    assert isinstance(cfg.model, LogisticRegressionParams)
    assert (cfg.model.C, cfg.seed) == (0.25, 7)
    assert flatten(cfg.raw)["model.C"] == "0.25"
{%- endif %}


def test_sklearn_model_group() -> None:
    cfg = from_container(compose(["model=logistic_regression", "model.C=0.5"]))
    assert isinstance(cfg.model, LogisticRegressionParams)
    assert cfg.model.C == 0.5


@pytest.mark.parametrize(
    ("override", "message"),
    [
{%- if cookiecutter.model_library == "xgboost" %}
        ("model.max_depth=deep", "invalid model.max_depth: Value 'deep'"),
        ("model.max_depth=0", "model.max_depth must be >= 1"),
{%- else %}
        ("model.max_iter=many", "invalid model.max_iter: Value 'many'"),
        ("model.C=0", "model.C must be > 0"),
{%- endif %}
        ("data.test_size=1.5", "data.test_size"),
        ("model.kind=catboost", "model.kind 'catboost'"),
    ],
)
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_container(compose([override]))


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
def test_a_typo_is_refused_with_the_likeliest_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        composed([override])
    assert "\n" not in str(refused.value)


def test_mlflow_run_extra_params_become_overrides() -> None:
    args = ["model=xgboost", "--model.max_depth", "4", "--multirun", "seed=1,2"]
    assert mlflow_params_to_overrides(args) == [
        "model=xgboost",
        "model.max_depth=4",
        "--multirun",
        "seed=1,2",
    ]
    with pytest.raises(ConfigError, match="no value"):
        mlflow_params_to_overrides(["--seed"])
