"""Hooks as modules: every refusal of pre_gen, and post_gen's git repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from conftest import TEMPLATE, load_hook

pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")

VALID = {
    "project_name": "Tumor Classifier",
    "project_slug": "tumor-classifier",
    "package_name": "tumor_classifier",
    "description": "A classifier.",
    "author": "ML Team",
    "python_version": "3.11",
    "model_library": "xgboost",
    "registered_model_name": "tumor-classifier",
    "dvc_remote": "local",
    "dvc_remote_url": "../.dvc-storage",
    "ci_workflows": "yes",
    "team_server": "no",
    "license": "MIT",
}


def errors_for(**changes: str) -> list[str]:
    return pre_gen.validate({**VALID, **changes})


def test_valid_answers_pass() -> None:
    assert errors_for() == []
    assert errors_for(project_name='Bob\'s "quoted" model', description='Say "hi"') == []
    assert errors_for(registered_model_name="Team.Model_v2-final") == []


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("project_slug", "Tumor-Classifier", "lowercase"),
        ("project_slug", "tumor classifier", "lowercase"),
        ("project_slug", "tumor--classifier", "single"),
        ("project_slug", "1-model", "starting with a letter"),
        ("project_slug", "model'", "lowercase"),
        ("package_name", "tumor-classifier", "valid lowercase Python identifier"),
        ("package_name", "2model", "valid lowercase Python identifier"),
        ("package_name", "my model", "valid lowercase Python identifier"),
        ("package_name", "Model", "valid lowercase Python identifier"),
        ("package_name", "class", "keyword"),
        ("package_name", "match", "keyword"),
        ("package_name", "json", "shadow"),
        ("package_name", "test", "already importable"),  # not in sys.stdlib_module_names
        ("package_name", "cookiecutter", "already importable"),  # a tool installed here
        # what the project's dependencies install, their dependencies' too (tools/...)
        ("package_name", "mlflow", "a module the project's dependencies install"),
        ("package_name", "optuna", "a module the project's dependencies install"),
        ("package_name", "scipy", "a module the project's dependencies install"),
        ("package_name", "dask", "a module the project's dependencies install"),
        ("package_name", "skops", "a module the project's dependencies install"),
        ("package_name", "pytest", "a module the project's dependencies install"),
        ("package_name", "mlrig", "a module the project's dependencies install"),
        ("project_slug", "scikit-learn", "a distribution the project depends on"),
        ("project_slug", "xgboost-cpu", "a distribution the project depends on"),
        ("package_name", "tasks", "shadow"),
        ("project_slug", "a" * 65, "at most 64"),
        ("registered_model_name", "my model", "no spaces"),
        ("registered_model_name", "team/model", "no spaces"),
        ("registered_model_name", "model@champion", "no spaces"),
        ("registered_model_name", "", "must start with a letter"),
        ("python_version", "3.9", "not supported"),
        ("python_version", "3.10", "not supported"),
        ("python_version", "3.14", "not supported"),
        ("python_version", "4.0", "not supported"),
        ("python_version", "3", "MAJOR.MINOR"),
        ("python_version", "3.11.2", "MAJOR.MINOR"),
        ("python_version", "three", "MAJOR.MINOR"),
        ("license", "GPL", "must be one of"),
        ("model_library", "torch", "must be one of"),
        ("dvc_remote", "gcs", "must be one of"),
        ("ci_workflows", "maybe", "must be one of"),
        ("team_server", "true", "must be one of"),
        ("dvc_remote_url", "s3://bucket/path", "must be a folder path"),
        ("dvc_remote_url", "", "must be a folder path"),
        ("project_name", "", "must not be empty"),
        ("project_name", "two\nlines", "single line"),
        ("author", "   ", "must not be empty"),
        ("description", "tab\there", "single line"),
    ],
)
def test_each_invalid_answer_is_refused_naming_field_and_rule(
    field: str, value: str, rule: str
) -> None:
    (message,) = errors_for(**{field: value})
    assert message.startswith(field)
    assert rule in message


def test_jinja_in_an_answer_is_refused_as_typed_or_as_given() -> None:
    defaults = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    typed = errors_for(project_name="{{ 7*7 }}")  # a prompt's answer reaches the hook raw
    given = pre_gen.validate({**VALID, "description": "49"}, {"description": "{# x #}"})
    for (message,), field, value in ((typed, "project_name", "{{ 7*7 }}"),
                                     (given, "description", "{# x #}")):  # fmt: skip
        assert message.startswith(f"{field} {value!r} contains Jinja template syntax")
    # The template's own defaults are templates over other answers, and so may a user's be.
    given = {k: v for k, v in defaults.items() if not k.startswith("_")}
    assert pre_gen.validate(VALID, given) == []
    slug = "{{ cookiecutter.project_name | slugify }}-v2"
    assert pre_gen.validate(VALID, {**given, "project_slug": slug}) == []


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("s3://team-dvc/storage", True),
        ("s3://team.dvc.bucket", True),
        ("../.dvc-storage", False),
        ("s3://Bad_Bucket/x", False),
        ("s3://", False),
        ("https://team-dvc.s3.amazonaws.com/storage", False),
    ],
)
def test_an_s3_remote_needs_an_s3_url(url: str, valid: bool) -> None:
    errors = errors_for(dvc_remote="s3", dvc_remote_url=url)
    assert errors == [] if valid else errors[0].startswith("dvc_remote_url")


def test_cookiecutter_json_holds_each_choice_s_default() -> None:
    """Plain defaults, the first value the hook accepts: a list would make cookiecutter
    refuse an answer outside it with a traceback, before the hook could say it in one line."""
    defaults = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    choices = {"python_version": pre_gen.PYTHON_VERSIONS, **pre_gen.CHOICES}
    assert {name: defaults[name] for name in choices} == {n: v[0] for n, v in choices.items()}
    for name, values in choices.items():
        assert all(value in defaults["__prompts__"][name] for value in values), name


def test_versions_compare_numerically() -> None:
    assert errors_for(python_version="3.12") == []
    assert errors_for(python_version="3.13") == []
    assert pre_gen.MIN_PYTHON < (3, 12) < pre_gen.MAX_PYTHON  # not "3.12" < "3.9" as strings


@pytest.mark.parametrize(
    "changes",
    [
        {"package_name": "class"},
        {"registered_model_name": "my model"},
        {"project_slug": "Bad Slug"},
        {"project_slug": "very-" * 40 + "long"},  # refused for itself, not its derived names
        {"package_name": "test"},
        {"dvc_remote_url": "s3://bucket/storage"},  # an s3 URL for the local remote
        {"project_name": "{{ 7*7 }}"},  # cookiecutter renders it to 49 before the hook runs
        {"author": "{% if true %}x{% endif %}"},
        {"license": "GPL"},  # outside the choices: the hook says so (cookiecutter would not)
        {"python_version": "3.10"},
        {"model_library": "pytorch"},
    ],
)
def test_refusal_happens_before_anything_is_written(tmp_path: Path, changes, capfd) -> None:
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=changes, output_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    field = next(iter(changes))
    assert f"ERROR: {field}" in capfd.readouterr().err


def test_post_gen_makes_a_repository_with_a_first_commit(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file.txt").write_text("x\n")
    monkeypatch.chdir(tmp_path)
    assert "first commit" in post_gen.init_repository()
    log = subprocess.run(["git", "log", "--oneline"], capture_output=True, text=True, check=True)
    assert "Initial commit from ml-template" in log.stdout
    assert "Already a git repository" in post_gen.init_repository()


def test_post_gen_pins_the_library_of_a_url_bake_to_its_commit() -> None:
    """A bake from a URL depends on the library at the rendered commit; without one (an
    archive URL) it would float with the branch, so post_gen refuses."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    table, requirement = post_gen.library_source("git@example.com:org/ml-template.git", commit)
    assert table == (
        f'{{ git = "ssh://git@example.com/org/ml-template.git", rev = "{commit}", '
        'subdirectory = "mlrig" }'
    )
    assert requirement.endswith(f"ml-template.git@{commit}#subdirectory=mlrig")
    with pytest.raises(SystemExit, match="not a git repository whose commit could be read"):
        post_gen.library_source("https://example.com/ml-template/archive/main.zip", None)


def test_post_gen_prunes_folders_left_empty(tmp_path: Path, monkeypatch) -> None:
    """Conditional file names that render empty leave their folders behind; nothing else."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / "deploy" / "kept").mkdir(parents=True)
    (tmp_path / "deploy" / "kept" / "file.txt").write_text("x\n")
    monkeypatch.chdir(tmp_path)
    post_gen.prune_empty_folders()
    assert not (tmp_path / ".github").exists()
    assert (tmp_path / "deploy" / "kept" / "file.txt").exists()


def test_post_gen_without_identity_stages_files(tmp_path: Path, monkeypatch) -> None:
    for variable in ("AUTHOR", "COMMITTER"):
        monkeypatch.delenv(f"GIT_{variable}_NAME")
        monkeypatch.delenv(f"GIT_{variable}_EMAIL")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tuseConfigOnly = true\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    project = tmp_path / "project"
    project.mkdir()
    (project / "file.txt").write_text("x\n")
    monkeypatch.chdir(project)
    report = post_gen.init_repository()
    assert "staged but not committed" in report
    status = subprocess.run(["git", "status", "--short"], capture_output=True, text=True)
    assert "file.txt" in status.stdout


def test_an_installed_bake_of_this_template_is_no_clash(tmp_path: Path, monkeypatch) -> None:
    """`cruft update` run in a project's own venv finds the project's package: not a clash;
    the same package outside a bake is one."""
    package = tmp_path / "project" / "src" / "shadow_probe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(package.parent))
    (refused,) = errors_for(package_name="shadow_probe")
    assert "already importable" in refused
    (tmp_path / "project" / ".cruft.json").write_text("{}")
    assert errors_for(package_name="shadow_probe") == []
