"""dvc.yaml's stages depend on every module they run: edit any module of the project a stage
imports, directly or not, or uv.lock (which pins the mlrig library), and `dvc status` reports
that stage, so `dvc repro` never calls a changed pipeline "up to date". The import closure
comes from the code itself (grimp, import-linter's graph)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
import yaml
from conftest import produce_raw

from {{ cookiecutter.package_name }}.project import PROJECT

PROJECT_ROOT = PROJECT.root

PACKAGE = "{{ cookiecutter.package_name }}"
PIPELINE = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]
STAGES = sorted(PIPELINE)


def closure(stage: str) -> set[Path]:
    """The source files of every project module `python -m <package>.stages.<stage>` imports,
    with the packages they live in (importing a module runs its packages' __init__)."""
    graph = grimp.build_graph(PACKAGE)
    entry = f"{PACKAGE}.stages.{stage}"
    modules = {entry, *graph.find_upstream_modules(entry)}
    packages = {".".join(m.split(".")[:n]) for m in modules for n in range(1, m.count(".") + 1)}
    files = set()
    for module in modules | packages:
        found = importlib.util.find_spec(module)
        assert found and found.origin, module
        files.add(Path(found.origin).relative_to(PROJECT_ROOT))
    return files


def covered(path: Path, deps: list[str]) -> bool:
    return any(path == Path(dep) or Path(dep) in path.parents for dep in deps)


@pytest.mark.parametrize("stage", STAGES)
def test_every_module_a_stage_runs_is_one_of_its_deps(stage: str) -> None:
    # tasks.py runs `python -m <package>.stages.<stage>` with the project's interpreter
    assert PIPELINE[stage]["cmd"] == f"python3 tasks.py stage -- {stage}"
    deps = PIPELINE[stage]["deps"]
    missing = sorted(str(path) for path in closure(stage) if not covered(path, deps))
    assert missing == [], f"add to the deps of stage {stage} in dvc.yaml: {missing}"
    assert "uv.lock" in deps  # the library's version


def dvc(cwd: Path, *args: str) -> str:
    executable = Path(sys.executable).with_name("dvc")
    done = subprocess.run([str(executable), *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def committed_pipeline(tmp_path: Path) -> Path:
    """A copy of the pipeline whose dvc.lock records the current code: every stage's outputs
    are placeholders committed as they are (`dvc commit`), so nothing has to run."""
    dvc(tmp_path, "init", "--no-scm", "--quiet")
    shutil.copytree(PROJECT_ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("*.pyc"))
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", "uv.lock"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    produce_raw(tmp_path)
    placeholders = (
        "data/processed/train.csv", "models/model/MLmodel",
        "reports/metrics.json", "reports/plots/roc.csv", "reports/figures/roc_curve.png",
    )  # fmt: skip
    for name in placeholders:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    dvc(tmp_path, "commit", "--force", "--quiet")
    assert json.loads(dvc(tmp_path, "status", "--json")) == {}
    return tmp_path


@pytest.mark.slow
def test_editing_any_module_a_stage_runs_makes_dvc_rerun_it(committed_pipeline: Path) -> None:
    runs_it = {stage: closure(stage) | {Path("uv.lock")} for stage in STAGES}
    for path in sorted(set().union(*runs_it.values())):
        source = committed_pipeline / path
        original = source.read_text()
        source.write_text(original + "\n# edited\n")
        try:
            changed = set(json.loads(dvc(committed_pipeline, "status", "--json")))
        finally:
            source.write_text(original)
        expected = {stage for stage, files in runs_it.items() if path in files}
        assert expected <= changed, f"editing {path}: dvc status reports only {changed}"
    assert json.loads(dvc(committed_pipeline, "status", "--json")) == {}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("key", "value", "reruns"),
    [
        ("tracking.tags.dataset_version", "v9", True),  # recorded on the run
        ("tracking.experiment_name", "elsewhere", True),  # where the run lands
        ("tracking.retention.failed_run_days", 99, False),  # `make gc`'s policy
        ("tracking.http_max_retries", 9, False),  # how to reach the store
    ],
)
def test_train_reruns_for_what_its_run_records_not_for_how_it_connects(
    committed_pipeline: Path, key: str, value: object, reruns: bool
) -> None:
    params_file = committed_pipeline / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    *parents, leaf = key.split(".")
    section = params
    for parent in parents:
        section = section[parent]
    section[leaf] = value
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(dvc(committed_pipeline, "status", "--json")))
    assert changed == ({"train"} if reruns else set()), key
