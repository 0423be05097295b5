"""The validation gate: a model version against the current champion, on held-out data.

`validate` only reads (a read-only account can run it); `promote` runs the same gate again
under the promotion lock and records the verdict it established (`record`). Registered models
are loaded as untrusted input (models/registered.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlflow

from .backends import Backend, backend_for
from .config import Config, MetricThreshold
from .errors import ProjectError
from .models import registered
from .registry import BASELINE_TAG, DIGEST_TAG, NO_CHAMPION, STATUS_TAG, champion, resolve

if TYPE_CHECKING:
    from .project import Project
    from .tracking.store import Tracking


class ValidationError(ProjectError):
    """The version cannot be validated (bad reference, schema mismatch); says why."""


@dataclass
class Check:
    metric: str
    rule: MetricThreshold
    candidate: float
    baseline: float | None

    @property
    def failures(self) -> list[str]:
        sign = 1 if self.rule.direction == "greater" else -1  # +1: higher is better
        reasons = []
        if sign * (self.candidate - self.rule.threshold) < 0:
            reasons.append(f"needs {'>=' if sign > 0 else '<='} {self.rule.threshold:g}")
        if self.baseline is not None:
            regression = sign * (self.baseline - self.candidate)
            if regression > self.rule.max_regression:
                reasons.append(
                    f"{regression:.4f} worse than champion (max {self.rule.max_regression:g})"
                )
        return reasons


@dataclass
class Result:
    model_name: str
    version: str
    baseline_version: str | None
    checks: list[Check]
    mode: str
    digest: str  # of the candidate's files, as they were checked and scored

    @property
    def passed(self) -> bool:
        return all(not check.failures for check in self.checks)

    def table(self) -> str:
        """A Markdown table: one row per metric, candidate vs champion, and why it failed."""
        champion = f"champion v{self.baseline_version}" if self.baseline_version else "champion"
        rows = [
            f"| metric | candidate v{self.version} | {champion} | rule | result |",
            "| --- | --- | --- | --- | --- |",
        ]
        for check in self.checks:
            rule = check.rule
            bound = ">=" if rule.direction == "greater" else "<="
            baseline = "—" if check.baseline is None else f"{check.baseline:.4f}"
            verdict = "; ".join(check.failures) or "pass"
            rows.append(
                f"| {check.metric} | {check.candidate:.4f} | {baseline} "
                f"| {bound} {rule.threshold:g}, regression <= {rule.max_regression:g} "
                f"| {verdict} |"
            )
        outcome = "PASSED" if self.passed else "FAILED"
        rows.append("")
        rows.append(f"Validation of {self.model_name} v{self.version}: {outcome} ({self.mode})")
        return "\n".join(rows)


def check_schema(inputs: list[str] | None, cfg: Config) -> None:
    """The model's input signature must be exactly the configured features."""
    if inputs is None:
        raise ValidationError("the model has no input signature; log it with one")
    missing = [c for c in cfg.data.features if c not in inputs]
    unexpected = [c for c in inputs if c not in cfg.data.features]
    if missing or unexpected:
        raise ValidationError(
            f"model signature does not match data.features: missing {missing}, "
            f"unexpected {unexpected}"
        )


def score(
    project: Project, tracking: Tracking, cfg: Config, backend: Backend[Any], uri: str, test: Any
) -> tuple[dict[str, float], str]:
    """Test-split metrics of a registered model, loaded without running code from it, and
    the digest of its checked files."""
    loaded = registered.load(project, uri, tracking.uri)
    check_schema(loaded.inputs, cfg)
    return project.metrics(backend.predict(loaded.spec, loaded.model, test), "test"), loaded.digest


def validate(
    project: Project,
    tracking: Tracking,
    cfg: Config,
    name: str,
    reference: str,
    mode: str | None = None,
) -> Result:
    """Evaluate a version (and the champion) on the test split; record nothing."""
    mode = mode or cfg.registry.validation.mode
    candidate = resolve(tracking, name, reference, project.cli)
    baseline = champion(tracking, cfg, name)
    if baseline is not None and baseline.version == candidate.version:
        raise ValidationError(f"v{candidate.version} is already the {cfg.registry.champion_alias}")
    backend = backend_for(project, cfg)
    with backend.session():
        test = backend.load_splits().test

        def scored(version: str) -> tuple[dict[str, float], str]:
            return score(project, tracking, cfg, backend, f"models:/{name}/{version}", test)

        scores, digest = scored(candidate.version)
        base_scores = scored(baseline.version)[0] if baseline else {}
    checks = []
    for metric, rule in cfg.registry.validation.metrics.items():
        if metric not in scores:
            raise ValidationError(f"unknown metric {metric!r}; known: {sorted(scores)}")
        checks.append(Check(metric, rule, scores[metric], base_scores.get(metric)))
    baseline_version = baseline and str(baseline.version)
    return Result(name, str(candidate.version), baseline_version, checks, mode, digest)


def record(tracking: Tracking, result: Result) -> None:
    """A validation run with the numbers, and the verdict on the version (its tags and
    description)."""
    experiment_id = tracking.ensure_experiment()
    tags = {
        "run_type": "validation",
        "model_name": result.model_name,
        "model_version": result.version,
        "validation.mode": result.mode,
        STATUS_TAG: "passed" if result.passed else "failed",
    }
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"validate-{result.model_name}-v{result.version}",
        tags=tags,
    ) as run:
        metrics = {f"candidate_{c.metric}": c.candidate for c in result.checks}
        metrics.update(
            {f"champion_{c.metric}": c.baseline for c in result.checks if c.baseline is not None}
        )
        mlflow.log_metrics(metrics)
        mlflow.log_params(
            {f"{c.metric}.{k}": v for c in result.checks for k, v in vars(c.rule).items()}
            | {"baseline_version": result.baseline_version or NO_CHAMPION}
        )
        mlflow.log_text(result.table(), "validation.md")
    client = tracking.client
    version_tags = {
        STATUS_TAG: tags[STATUS_TAG],
        BASELINE_TAG: result.baseline_version or NO_CHAMPION,
        DIGEST_TAG: result.digest,
        "validation.run_id": run.info.run_id,
    } | {f"validation.{c.metric}": f"{c.candidate:.6f}" for c in result.checks}
    for key, value in version_tags.items():
        client.set_model_version_tag(result.model_name, result.version, key, value)
    client.update_model_version(result.model_name, result.version, description=result.table())
