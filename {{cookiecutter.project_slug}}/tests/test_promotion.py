"""Validation gate, promotion by alias, rollback and concurrency on a real registry."""

from __future__ import annotations

import threading

import pytest
from conftest import GOOD, POOR
from mlflow import MlflowClient

from {{ cookiecutter.package_name }} import promotion, registry, validation
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


def copy_version(cfg: Config, version: str) -> str:
    """Another version of the same model (same artifacts, same scores)."""
    client = MlflowClient()
    source = client.get_model_version(cfg.registry.model_name, version)
    copy = client.create_model_version(cfg.registry.model_name, source.source, source.run_id)
    return str(copy.version)


def live_tickets(cfg: Config) -> list[str]:
    lock = registry.lock_name(cfg.registry.model_name)
    return [v.version for v in MlflowClient().search_model_versions(f"name = '{lock}'")]


@pytest.fixture
def first(trained: str) -> tuple[Config, str]:
    return composed(GOOD), trained


def test_validate_reads_only_and_promote_records_its_own_verdict(first) -> None:
    cfg, version = first
    result = validation.validate(cfg, cfg.registry.model_name, "challenger")
    assert result.passed, result.table()
    assert result.baseline_version is None
    assert all(check.baseline is None for check in result.checks)
    assert (
        "validation.status"
        not in MlflowClient().get_model_version(cfg.registry.model_name, version).tags
    )

    assert "is now @champion" in promotion.promote(cfg, cfg.registry.model_name, version)
    assert aliases(cfg) == {"champion": int(version)}  # challenger cleared
    mv = MlflowClient().get_model_version(cfg.registry.model_name, version)
    assert mv.tags["validation.status"] == "passed"
    assert mv.tags["validation.baseline_version"] == "none"
    assert "PASSED" in mv.description
    assert live_tickets(cfg) == []


def test_a_forged_verdict_is_refused(first, capsys) -> None:
    """Tags anyone with edit rights can set do not promote: promote runs the gate itself."""
    cfg, v1 = first
    name = cfg.registry.model_name
    promotion.promote(cfg, name, v1)
    _, poor = train(POOR)
    client = MlflowClient()
    for key, value in {"validation.status": "passed", "validation.baseline_version": v1}.items():
        client.set_model_version_tag(name, poor.version, key, value)

    with pytest.raises(promotion.PromotionError, match="does not pass the validation gate"):
        promotion.promote(cfg, name, poor.version)
    assert aliases(cfg)["champion"] == int(v1)
    assert client.get_model_version(name, poor.version).tags["validation.status"] == "failed"
    # What promote.yml runs: non-zero exits stop the workflow before the promote job.
    assert main(["validate", "--version", poor.version]) == 1
    assert "worse than champion" in capsys.readouterr().out
    assert main(["promote", "--version", poor.version]) == 2
    assert "does not pass the validation gate" in capsys.readouterr().err
    assert live_tickets(cfg) == []


def test_better_version_promoted_then_rolled_back(first) -> None:
    cfg, v1 = first
    name = cfg.registry.model_name
    promotion.promote(cfg, name, v1)
    better = copy_version(cfg, v1)
    assert main(["validate", "--version", better]) == 0
    assert main(["promote", "--version", better]) == 0
    assert aliases(cfg)["champion"] == int(better)
    assert aliases(cfg)["previous-champion"] == int(v1)

    assert "rolled back" in promotion.rollback(cfg, name)
    assert aliases(cfg)["champion"] == int(v1)
    assert "previous-champion" not in aliases(cfg)
    rolled = MlflowClient().get_model_version(name, better)
    assert rolled.tags["validation.status"] == "rolled-back"
    with pytest.raises(promotion.PromotionError, match="no @previous-champion"):
        promotion.rollback(cfg, name)


def test_dry_run_reports_a_failure_without_failing(first) -> None:
    cfg, v1 = first
    promotion.promote(cfg, cfg.registry.model_name, v1)
    _, poor = train(POOR)
    assert main(["validate", "--version", poor.version, "--mode", "dry-run"]) == 0


def test_concurrent_promotions_leave_one_champion(first) -> None:
    """Each promotion validates against the champion it finds under the lock."""
    cfg, v1 = first
    name = cfg.registry.model_name
    promotion.promote(cfg, name, v1)
    contenders = [copy_version(cfg, v1), copy_version(cfg, v1)]
    outcomes: dict[str, str] = {}

    def promote(version: str) -> None:
        outcomes[version] = promotion.promote(cfg, name, version)

    threads = [threading.Thread(target=promote, args=(v,)) for v in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 2, outcomes
    final = aliases(cfg)
    assert final["champion"] in {int(v) for v in contenders}
    (first_winner,) = {int(v) for v in contenders} - {final["champion"]}
    assert final["previous-champion"] == first_winner  # the second saw the first as champion
    assert live_tickets(cfg) == []


def test_a_stale_ticket_of_a_crashed_promotion_is_cleared(
    first, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, v1 = first
    name = cfg.registry.model_name
    registry.create_lock(MlflowClient(), name)
    MlflowClient().create_model_version(registry.lock_name(name), registry.LOCK_SOURCE)
    monkeypatch.setattr(cfg.registry, "lock_timeout_s", 1.0)
    with pytest.raises(promotion.PromotionError, match="another promotion"):
        promotion.promote(cfg, name, v1)
    monkeypatch.setattr(promotion, "STALE_LOCK_S", 0.0)  # the crashed one's ticket is now stale
    promotion.promote(cfg, name, v1)
    assert aliases(cfg)["champion"] == int(v1)
    assert live_tickets(cfg) == []


@pytest.mark.parametrize("reference", ["1; rm -rf /", "champion!", "0", "", "3\n", "champion\n"])
def test_bad_references_are_refused(first, reference: str) -> None:
    cfg, _ = first
    with pytest.raises(registry.RegistryError, match="neither a version number nor an alias"):
        validation.validate(cfg, cfg.registry.model_name, reference)


def test_only_the_projects_model_is_acted_on(first, capsys) -> None:
    assert main(["validate", "--model", "someone-elses-model", "--version", "1"]) == 2
    assert "is not this project's model" in capsys.readouterr().err
