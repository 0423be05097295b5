"""Configuration: conf/ is the single source, params.yaml mirrors it, every combination of
its groups composes into a typed configuration, and bad values are refused naming the key."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
import yaml
from mlrig import ConfigError
from mlrig.config import compose, flatten, to_plain
from omegaconf import OmegaConf

from {{ cookiecutter.package_name }}.data import BreastCancerParams, SyntheticParams
from {{ cookiecutter.package_name }}.models.logistic_regression import LogisticRegressionParams
{%- if cookiecutter.model_library == "xgboost" %}
from {{ cookiecutter.package_name }}.models.xgboost import XGBoostParams
{%- endif %}
from {{ cookiecutter.package_name }}.project import PROJECT

GROUPS = ("data", "model", "compute")


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (PROJECT.conf_dir / group).glob("*.yaml"))


def test_params_yaml_is_the_composition_of_conf() -> None:
    """... of the committed conf/: without this machine's conf/local/, when it has one."""
    from hydra import compose, initialize_config_dir

    local = ["~local"] if (PROJECT.conf_dir / "local" / "default.yaml").exists() else []
    with initialize_config_dir(config_dir=str(PROJECT.conf_dir), version_base="1.3"):
        composed = compose(config_name="config", overrides=local)
        expected = OmegaConf.to_container(composed, resolve=True)
    assert yaml.safe_load((PROJECT.root / "params.yaml").read_text()) == expected


def test_conf_local_overrides_everything_on_its_machine(tmp_path: Path) -> None:
    """conf/local/default.yaml, when it exists, is composed last: its values reach the run's
    params (over an experiment preset's too)."""
    conf = shutil.copytree(PROJECT.conf_dir, tmp_path / "conf")
    plain = flatten(to_plain(compose(conf, ["experiment=example"])))
    (conf / "local").mkdir(exist_ok=True)
    (conf / "local" / "default.yaml").write_text(
        "# @package _global_\nseed: 7\ntracking:\n  tags:\n    experiment: on-my-laptop\n"
    )
    local = flatten(to_plain(compose(conf, ["experiment=example"])))
    assert {k for k in local if local[k] != plain.get(k)} == {"seed", "tracking.tags.experiment"}
    assert (local["seed"], local["tracking.tags.experiment"]) == ("7", "on-my-laptop")


def test_mlproject_defaults_match_conf() -> None:
    spec = yaml.safe_load((PROJECT.root / "MLproject").read_text())
    parameters = spec["entry_points"]["main"]["parameters"]
    cfg = PROJECT.load_params(PROJECT.root / "params.yaml")
    assert parameters["model"]["default"] == cfg.model.kind
    assert parameters["seed"]["default"] == str(cfg.seed)
    command = spec["entry_points"]["main"]["command"]
    assert all(name + "={" + name + "}" in command for name in parameters)


def test_an_experiment_preset_changes_the_logged_params() -> None:
    """`experiment=example` composes over conf/: each value it sets reaches the params a run
    logs (the flattened configuration), whatever conf/ holds beside it."""
    written = yaml.safe_load((PROJECT.conf_dir / "experiment" / "example.yaml").read_text())
    written.pop("defaults")
    preset = flatten(PROJECT.composed(["experiment=example"]).raw)
    wanted = flatten(written)
    assert {key: preset[key] for key in wanted} == wanted
    assert preset["tracking.tags.experiment"] == "example"
    assert "tracking.tags.experiment" not in flatten(PROJECT.composed([]).raw)


@pytest.mark.parametrize(
    "choice", list(itertools.product(*(options(group) for group in GROUPS))), ids=str
)
def test_every_combination_of_the_groups_composes(choice: tuple[str, ...]) -> None:
    """Each combination is typed, or refused with the reason (a backend that cannot train
    the model)."""
    overrides = [f"{group}={name}" for group, name in zip(GROUPS, choice, strict=True)]
    try:
        cfg = PROJECT.composed(overrides)
    except ConfigError as refused:
        assert "compute=dask cannot train" in str(refused), refused
        return
    assert cfg.model.kind == choice[1] and cfg.compute.kind == choice[2]
    assert isinstance(cfg.data.producer, (BreastCancerParams, SyntheticParams))


@pytest.mark.parametrize(
    ("overrides", "params"),
    [
{%- if cookiecutter.model_library == "xgboost" %}
        (["model.max_depth=3"], XGBoostParams),
{%- endif %}
        (["model=logistic_regression", "model.C=0.5"], LogisticRegressionParams),
    ],
)
def test_each_model_kind_types_its_section(overrides: list[str], params: type) -> None:
    assert isinstance(PROJECT.composed(overrides).model, params)


@pytest.mark.parametrize(
    ("override", "message"),
    [
{%- if cookiecutter.model_library == "xgboost" %}
        ("model.max_depth=deep", "invalid model.max_depth: Value 'deep'"),
        ("model.max_depth=0", "model.max_depth must be >= 1"),
        ("model.device=gpu", "model.device must be cpu, cuda or cuda:<ordinal>"),
{%- else %}
        ("model.max_iter=many", "invalid model.max_iter: Value 'many'"),
        ("model.C=0", "model.C must be > 0"),
{%- endif %}
        ("data.test_size=1.5", "data.test_size"),
        ("model.kind=catboost", "model.kind 'catboost'"),
        ("data.producer.kind=scraper", "data.producer.kind 'scraper'"),
    ],
)
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PROJECT.composed([override])


{%- if cookiecutter.model_library == "xgboost" %}


def test_the_device_reaches_xgboost() -> None:
    cfg = PROJECT.composed(["model.device=cuda:1"])
    assert PROJECT.spec(cfg.model).arguments(cfg.model, cfg.seed)["device"] == "cuda:1"
{%- endif %}


def test_synthetic_data_checks_its_parameters() -> None:
    with pytest.raises(ConfigError, match="n_informative must be between 1 and the number"):
        PROJECT.composed(["data=synthetic", "data.producer.n_informative=21"])
