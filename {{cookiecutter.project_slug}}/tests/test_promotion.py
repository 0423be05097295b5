"""Validation gate, promotion by alias, rollback and concurrency on a real registry."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import GOOD, POOR
from mlflow import MlflowClient

from {{ cookiecutter.package_name }} import registry, validation
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import Config
from {{ cookiecutter.package_name }}.job import run_job
from {{ cookiecutter.package_name }}.settings import composed
from {{ cookiecutter.package_name }}.steps import Summary

pytestmark = pytest.mark.e2e


def aliases(cfg: Config) -> dict[str, int]:
    return MlflowClient().get_registered_model(cfg.registry.model_name).aliases


def train(overrides: list[str]) -> tuple[Config, Summary]:
    cfg = composed(overrides)
    return cfg, run_job(cfg)


def reregister(cfg: Config, version: str) -> str:
    """A new version of an existing model (same artifacts, same scores)."""
    source = MlflowClient().get_model_version(cfg.registry.model_name, version)
    again = registry.register(source.source, cfg.registry.model_name, "challenger", source.run_id)
    return str(again.version)


@pytest.fixture
def first(workspace: Path) -> tuple[Config, str]:
    cfg, summary = train(GOOD)
    return cfg, summary.version


def test_first_version_is_judged_on_thresholds_and_promoted(first) -> None:
    cfg, version = first
    result = validation.validate(cfg, cfg.registry.model_name, "challenger")
    assert result.passed, result.table()
    assert result.baseline_version is None
    assert all(check.baseline is None for check in result.checks)

    mv = MlflowClient().get_model_version(cfg.registry.model_name, version)
    assert mv.tags["validation.status"] == "passed"
    assert mv.tags["validation.baseline_version"] == "none"
    assert "PASSED" in mv.description
    assert "champion" in registry.promote(cfg, cfg.registry.model_name, version)
    assert aliases(cfg) == {"champion": int(version)}  # challenger cleared


def test_unvalidated_or_failed_versions_are_refused(first) -> None:
    cfg, version = first
    with pytest.raises(registry.PromotionError, match="has not passed validation"):
        registry.promote(cfg, cfg.registry.model_name, version)


def test_worse_challenger_refused_better_promoted_rollback_restores(first, capsys) -> None:
    cfg, v1 = first
    name = cfg.registry.model_name
    validation.validate(cfg, name, v1)
    registry.promote(cfg, name, v1)

    _, poor = train(POOR)
    result = validation.validate(cfg, name, "challenger")
    assert not result.passed
    table = result.table()
    assert f"champion v{v1}" in table and "worse than champion" in table and "FAILED" in table
    assert MlflowClient().get_model_version(name, poor.version).tags["validation.status"] == (
        "failed"
    )
    with pytest.raises(registry.PromotionError, match="has not passed validation"):
        registry.promote(cfg, name, poor.version)
    # What promote.yml runs: non-zero exits stop the workflow before the promote job.
    assert main(["validate", "--version", poor.version]) == 1
    assert main(["promote", "--version", poor.version]) == 2
    assert "has not passed validation" in capsys.readouterr().err

    better = reregister(cfg, v1)
    assert main(["validate", "--version", better]) == 0
    assert main(["promote", "--version", better]) == 0
    assert aliases(cfg)["champion"] == int(better)
    assert aliases(cfg)["previous-champion"] == int(v1)

    assert "rolled back" in registry.rollback(cfg, name)
    assert aliases(cfg)["champion"] == int(v1)
    assert "previous-champion" not in aliases(cfg)
    rolled = MlflowClient().get_model_version(name, better)
    assert rolled.tags["validation.status"] == "rolled-back"
    with pytest.raises(registry.PromotionError, match="no @previous-champion"):
        registry.rollback(cfg, name)


def test_dry_run_reports_without_marking(first) -> None:
    cfg, version = first
    result = validation.validate(cfg, cfg.registry.model_name, version, mode="dry-run")
    assert result.passed and "(dry-run)" in result.table()
    tags = MlflowClient().get_model_version(cfg.registry.model_name, version).tags
    assert "validation.status" not in tags


def test_concurrent_promotions_leave_one_champion(first) -> None:
    cfg, v1 = first
    name = cfg.registry.model_name
    validation.validate(cfg, name, v1)
    registry.promote(cfg, name, v1)
    contenders = [reregister(cfg, v1), reregister(cfg, v1)]
    for version in contenders:
        assert validation.validate(cfg, name, version).passed  # both against champion v1

    outcomes: dict[str, str] = {}

    def promote(version: str) -> None:
        try:
            outcomes[version] = registry.promote(cfg, name, version)
        except registry.PromotionError as err:
            outcomes[version] = f"refused: {err}"

    threads = [threading.Thread(target=promote, args=(v,)) for v in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [v for v, outcome in outcomes.items() if not outcome.startswith("refused")]
    assert len(winners) == 1, outcomes
    (loser,) = set(contenders) - set(winners)
    assert "validate it again" in outcomes[loser]
    assert aliases(cfg)["champion"] == int(winners[0])
    assert aliases(cfg)["previous-champion"] == int(v1)
    lock = f"{name}{registry.LOCK_SUFFIX}"
    assert lock not in {m.name for m in MlflowClient().search_registered_models()}


@pytest.mark.parametrize("reference", ["1; rm -rf /", "champion!", "0", ""])
def test_bad_references_are_refused(first, reference: str) -> None:
    cfg, _ = first
    with pytest.raises(registry.RegistryError, match="neither a version number nor an alias"):
        validation.validate(cfg, cfg.registry.model_name, reference)
