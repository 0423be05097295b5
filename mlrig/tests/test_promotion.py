"""Validation gate, promotion by alias, rollback and concurrency on a real registry."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import GOOD, POOR, tracking
from mlflow import MlflowClient

import mlrig
from mlrig import Config, Project, promotion, registry, validation
from mlrig.job import run_job
from mlrig.steps import Summary


def aliases(cfg: Config) -> dict[str, int]:
    return MlflowClient().get_registered_model(cfg.registry.model_name).aliases


def train(project: Project, overrides: list[str]) -> tuple[Config, Summary]:
    cfg = project.composed(overrides)
    return cfg, run_job(project, cfg)


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
def first(project: Project, trained: str) -> tuple[Config, str]:
    return project.composed(GOOD), trained


def promote(project: Project, cfg: Config, version: str) -> str:
    return promotion.promote(project, tracking(cfg), cfg, cfg.registry.model_name, version)


def test_validate_reads_only_and_promote_records_its_own_verdict(project: Project, first) -> None:
    cfg, version = first
    result = validation.validate(project, tracking(cfg), cfg, cfg.registry.model_name, "challenger")
    assert result.passed, result.table()
    assert result.baseline_version is None
    assert all(check.baseline is None for check in result.checks)
    assert (
        "validation.status"
        not in MlflowClient().get_model_version(cfg.registry.model_name, version).tags
    )

    assert "is now @champion" in promote(project, cfg, version)
    assert aliases(cfg) == {"champion": int(version)}  # challenger cleared
    mv = MlflowClient().get_model_version(cfg.registry.model_name, version)
    assert mv.tags["validation.status"] == "passed"
    assert mv.tags["validation.baseline_version"] == "none"
    assert "PASSED" in mv.description
    assert live_tickets(cfg) == []


def test_a_forged_verdict_is_refused(project: Project, first, capsys) -> None:
    """Tags anyone with edit rights can set do not promote: promote runs the gate itself."""
    cfg, v1 = first
    name = cfg.registry.model_name
    promote(project, cfg, v1)
    _, poor = train(project, POOR)
    client = MlflowClient()
    for key, value in {"validation.status": "passed", "validation.baseline_version": v1}.items():
        client.set_model_version_tag(name, poor.version, key, value)

    with pytest.raises(promotion.PromotionError, match="does not pass the validation gate"):
        promote(project, cfg, poor.version)
    assert aliases(cfg)["champion"] == int(v1)
    assert client.get_model_version(name, poor.version).tags["validation.status"] == "failed"
    # What promote.yml runs: non-zero exits stop the workflow before the promote job.
    assert mlrig.main(project, ["validate", "--version", poor.version]) == 1
    assert "worse than champion" in capsys.readouterr().out
    assert mlrig.main(project, ["promote", "--version", poor.version]) == 2
    assert "does not pass the validation gate" in capsys.readouterr().err
    assert live_tickets(cfg) == []


def test_better_version_promoted_then_rolled_back(project: Project, first) -> None:
    cfg, v1 = first
    name = cfg.registry.model_name
    promote(project, cfg, v1)
    better = copy_version(cfg, v1)
    assert mlrig.main(project, ["validate", "--version", better]) == 0
    assert mlrig.main(project, ["promote", "--version", better]) == 0
    assert aliases(cfg)["champion"] == int(better)
    assert aliases(cfg)["previous-champion"] == int(v1)
    client = MlflowClient()
    assert registry.validated(client, name, better) is not None  # recorded on the lock

    assert "rolled back" in promotion.rollback(tracking(cfg), cfg, name)
    assert aliases(cfg)["champion"] == int(v1)
    assert "previous-champion" not in aliases(cfg)
    rolled = MlflowClient().get_model_version(name, better)
    assert rolled.tags["validation.status"] == "rolled-back"
    assert registry.validated(client, name, better) is None  # no longer served
    assert registry.validated(client, name, v1) is not None
    with pytest.raises(promotion.PromotionError, match="no @previous-champion"):
        promotion.rollback(tracking(cfg), cfg, name)


def test_dry_run_reports_a_failure_without_failing(project: Project, first) -> None:
    cfg, v1 = first
    promote(project, cfg, v1)
    _, poor = train(project, POOR)
    assert mlrig.main(project, ["validate", "--version", poor.version, "--mode", "dry-run"]) == 0


def test_concurrent_promotions_leave_one_champion(project: Project, first) -> None:
    """Each promotion validates against the champion it finds under the lock."""
    cfg, v1 = first
    promote(project, cfg, v1)
    contenders = [copy_version(cfg, v1), copy_version(cfg, v1)]
    outcomes: dict[str, str] = {}

    def promote_one(version: str) -> None:
        outcomes[version] = promote(project, cfg, version)

    threads = [threading.Thread(target=promote_one, args=(v,)) for v in contenders]
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
    project: Project, first, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, v1 = first
    name = cfg.registry.model_name
    registry.create_lock(MlflowClient(), name)
    MlflowClient().create_model_version(registry.lock_name(name), registry.LOCK_SOURCE)
    monkeypatch.setattr(cfg.registry, "lock_timeout_s", 1.0)
    with pytest.raises(promotion.PromotionError, match="another promotion"):
        promote(project, cfg, v1)
    monkeypatch.setattr(promotion, "STALE_LOCK_S", 0.0)  # the crashed one's ticket is now stale
    promote(project, cfg, v1)
    assert aliases(cfg)["champion"] == int(v1)
    assert live_tickets(cfg) == []


@pytest.mark.parametrize("reference", ["1; rm -rf /", "champion!", "0", "", "3\n", "champion\n"])
def test_bad_references_are_refused(project: Project, first, reference: str) -> None:
    cfg, _ = first
    with pytest.raises(registry.RegistryError, match="neither a version number nor an alias"):
        validation.validate(project, tracking(cfg), cfg, cfg.registry.model_name, reference)


def test_only_the_projects_model_is_acted_on(project: Project, first, capsys) -> None:
    assert (
        mlrig.main(project, ["validate", "--model", "someone-elses-model", "--version", "1"]) == 2
    )
    assert "is not this project's model" in capsys.readouterr().err


def test_no_champion_yet_says_how_to_make_one(project: Project, first, capsys) -> None:
    assert mlrig.main(project, ["predict", "--input", "x.csv", "--output", "y.csv"]) == 2
    err = capsys.readouterr().err
    assert "no version of demo-model has the alias @champion yet" in err
    assert "`python -m demo.cli promote --version N`" in err


def test_a_promotion_never_creates_the_lock(project: Project, workspace: Path, capsys) -> None:
    """`make setup` creates it where the store does not authenticate; without it, promote
    stops and says who creates it."""
    cfg, summary = train(project, GOOD)
    assert mlrig.main(project, ["promote", "--version", summary.version]) == 2
    assert (
        "the promotion lock 'demo-model.promotion-lock' does not exist" in capsys.readouterr().err
    )
    assert live_tickets_model(cfg) is None
    assert mlrig.main(project, ["init-tracking"]) == 0
    assert "Promotion lock 'demo-model.promotion-lock' ready." in capsys.readouterr().out
    assert mlrig.main(project, ["promote", "--version", summary.version]) == 0


def live_tickets_model(cfg: Config) -> object:
    """The lock's registered model, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient().get_registered_model(registry.lock_name(cfg.registry.model_name))
    except MlflowException:
        return None
