"""Registered models are untrusted input: versions crafted to run code when loaded, or to
install what they like when served, are refused by everything the project loads them with
(the gate, promotion, predictions, the serving build context); the payload never runs."""

from __future__ import annotations

import contextlib
import json
import pathlib
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
import yaml
from conftest import GOOD, tracking
from mlflow import MlflowClient

from mlrig import Config, Project, promotion, registry, serving, validation
from mlrig.models import registered
from mlrig.models.base import ModelRefused


class Payload:
    """Unpickling this creates `marker`: the proof that loading ran the model's code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[object, ...]]:
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def signature(cfg: Config) -> dict[str, str]:
    inputs = [{"type": "double", "name": name, "required": True} for name in cfg.data.features]
    outputs = [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]
    return {"inputs": json.dumps(inputs), "outputs": json.dumps(outputs)}


def served_by_sklearn(native: str) -> dict:
    """The python_function section MLflow writes for a scikit-learn model file."""
    env = {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    return {"loader_module": "mlflow.sklearn", "model_path": native, "predict_fn": "predict",
            "env": env, "python_version": "3.11.7"}  # fmt: skip


def pickled_sklearn(folder: Path, cfg: Config, marker: Path) -> None:
    """A scikit-learn flavor saved with pickle, whose pickle runs code."""
    (folder / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    flavors = {
        "python_function": served_by_sklearn("model.pkl"),
        "sklearn": {"pickled_model": "model.pkl", "serialization_format": "pickle"},
    }
    write_model(folder, cfg, flavors, ["mlflow==3.17.2", "scikit-learn==1.9.1"])


def python_model(folder: Path, cfg: Config, marker: Path) -> None:
    """A pyfunc model: MLflow unpickles its python_model with cloudpickle."""
    (folder / "python_model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    pyfunc = {"loader_module": "mlflow.pyfunc.model", "python_model": "python_model.pkl"}
    flavors = {"python_function": pyfunc}
    write_model(folder, cfg, flavors, ["mlflow==3.17.2"])


def skops_with_untrusted_types(folder: Path, cfg: Config, marker: Path, trusted=None) -> None:
    """skops, but with types skops does not trust."""
    import skops.io
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1])
    skops.io.dump(tree, folder / "model.skops")
    flavors = {
        "python_function": served_by_sklearn("model.skops"),
        "sklearn": {
            "pickled_model": "model.skops",
            "serialization_format": "skops",
            "skops_trusted_types": trusted,
        },
    }
    write_model(folder, cfg, flavors, ["mlflow==3.17.2", "scikit-learn==1.9.1", "skops==0.16.0"])


def skops_trusting_itself(folder: Path, cfg: Config, marker: Path) -> None:
    """skops' untrusted types, whitelisted by the model's own MLmodel (which MLflow's loader
    would trust)."""
    skops_with_untrusted_types(folder, cfg, marker, trusted=["sklearn.tree._tree.Tree"])


def escaping_path(folder: Path, cfg: Config, marker: Path) -> None:
    """A native format whose file lies outside the model directory."""
    escaping = "../../../etc/passwd"
    flavors = {
        "python_function": served_by_sklearn(escaping),
        "sklearn": {"pickled_model": escaping, "serialization_format": "skops"},
    }
    write_model(folder, cfg, flavors, ["mlflow==3.17.2", "scikit-learn==1.9.1"])


def write_model(folder: Path, cfg: Config, flavors: dict, requirements: list[str]) -> None:
    mlmodel = {"flavors": flavors, "signature": signature(cfg), "mlflow_version": "3.17.2"}
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    (folder / "requirements.txt").write_text("\n".join(requirements) + "\n")


def register(cfg: Config, folder: Path) -> str:
    """Register `folder` as a new version of the project's model (what any user who may
    register can do)."""
    client = MlflowClient()
    experiment_id = client.get_experiment_by_name(cfg.tracking.experiment_name).experiment_id
    run = client.create_run(experiment_id)
    client.log_artifacts(run.info.run_id, str(folder), "model")
    client.set_terminated(run.info.run_id)
    source = f"runs:/{run.info.run_id}/model"
    version = client.create_model_version(cfg.registry.model_name, source, run.info.run_id)
    return str(version.version)


@pytest.fixture
def champion(project: Project, trained: str) -> Config:
    """A project with a champion: its configuration."""
    cfg = project.composed(GOOD)
    promotion.promote(project, tracking(cfg), cfg, cfg.registry.model_name, trained)
    return cfg


def loaders(
    project: Project, cfg: Config, version: str, workspace: Path
) -> dict[str, Callable[[], object]]:
    name, uri = cfg.registry.model_name, f"models:/{cfg.registry.model_name}/{version}"
    raw = workspace / cfg.data.raw_path
    store = tracking(cfg)
    context = workspace / "context"
    return {
        "validate": lambda: validation.validate(project, store, cfg, name, version),
        "promote": lambda: promotion.promote(project, store, cfg, name, version),
        "predict": lambda: serving.predict_csv(project, store, uri, raw, workspace / "out.csv"),
        "dockerfile": lambda: serving.dockerfile(project, store, name, version, context),
    }


@pytest.mark.parametrize(
    ("craft", "refusal"),
    [
        (pickled_sklearn, "only skops loads without running code"),
        (python_model, "this project loads only"),
        (skops_with_untrusted_types, "untrusted types"),
        (skops_trusting_itself, "the model file trusts the types"),
        (escaping_path, "not a file inside the model directory"),
    ],
)
def test_a_crafted_model_never_runs(
    project: Project, champion: Config, workspace: Path, craft: Callable[..., None], refusal: str
) -> None:
    marker = workspace / "payload-ran"
    folder = workspace / "crafted"
    folder.mkdir()
    craft(folder, champion, marker)
    version = register(champion, folder)
    for name, load in loaders(project, champion, version, workspace).items():
        with pytest.raises(ModelRefused, match=refusal):
            load()
        assert not marker.exists(), f"{name} ran the model's code"
    aliases = MlflowClient().get_registered_model(champion.registry.model_name).aliases
    assert aliases["champion"] != int(version)


def test_the_payload_is_live(champion: Config, workspace: Path) -> None:
    """The control: MLflow's own loader, which the library never uses on registry models,
    does run it."""
    marker = workspace / "payload-ran"
    folder = workspace / "crafted"
    folder.mkdir()
    pickled_sklearn(folder, champion, marker)
    version = register(champion, folder)
    with contextlib.suppress(Exception):  # what it returns is no model, if anything
        mlflow.sklearn.load_model(f"models:/{champion.registry.model_name}/{version}")
    assert marker.exists()


@pytest.mark.parametrize(
    "requirement",
    [
        "evil-package==1.0",
        "xgboost @ https://example.invalid/xgboost.whl",
        "--index-url https://example.invalid/simple",
        "mlflow>=3",
        "mlflow[gateway]==3.17.2",  # an extra installs other distributions
    ],
)
def test_an_environment_naming_other_packages_is_refused(
    project: Project, champion: Config, workspace: Path, requirement: str
) -> None:
    """The champion's own files, with one line added to its requirements: serving it would
    install that, so the gate and the serving build context refuse it."""
    name = champion.registry.model_name
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{name}@champion"))
    copy = workspace / "tampered"
    shutil.copytree(folder, copy)
    requirements = copy / "requirements.txt"
    requirements.write_text(f"{requirements.read_text().rstrip()}\n{requirement}\n")
    version = register(champion, copy)
    for load in loaders(project, champion, version, workspace).values():
        with pytest.raises(ModelRefused, match="may name only those"):
            load()


HYBRID_LOADER = """
from pathlib import Path
Path({marker!r}).touch()  # runs when serving imports the loader


def _load_pyfunc(path):
    raise RuntimeError("a loader of the model's own")
"""


def hybrid(folder: Path, champion: str, marker: Path) -> None:
    """The champion's own files, only its python_function section edited to load with a
    module of the model's own (code/), its environment pointing at a file naming a wheel of
    the model's own: what serving loads, not what the gate reads."""
    shutil.copytree(Path(mlflow.artifacts.download_artifacts(champion)), folder)
    (folder / "registered_model_meta").unlink()
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    pyfunc = mlmodel["flavors"]["python_function"]
    pyfunc["loader_module"] = "hybrid_loader"
    pyfunc["code"] = "code"
    pyfunc["env"] = {"virtualenv": "hybrid_env.yaml"}
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    (folder / "code").mkdir()
    (folder / "code" / "hybrid_loader.py").write_text(HYBRID_LOADER.format(marker=str(marker)))
    (folder / "hybrid_env.yaml").write_text(
        "python: 3.11.7\ndependencies:\n  - https://example.invalid/own-1.0-py3-none-any.whl\n"
    )


def test_a_hybrid_of_the_champion_is_never_served(
    project: Project, champion: Config, workspace: Path
) -> None:
    """The champion's native file and requirements (what the gate reads) with a serving
    section of its own (what `mlflow models serve`, `mlflow.pyfunc.load_model` and the image
    load): refused by the gate, promotion, predictions and the image; its loader never runs,
    and the champion, served, is still the validated one."""
    name = champion.registry.model_name
    marker, folder = workspace / "payload-ran", workspace / "hybrid"
    hybrid(folder, f"models:/{name}@champion", marker)
    version = register(champion, folder)
    for load in loaders(project, champion, version, workspace).values():
        with pytest.raises(ModelRefused, match="python_function flavor"):
            load()
    assert not marker.exists()
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert served.metadata.flavors["python_function"]["loader_module"] == "mlflow.sklearn"
    assert not marker.exists()
    with contextlib.suppress(Exception):  # the control: MLflow's loader runs the module
        mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    assert marker.exists()


def test_a_file_a_model_has_no_use_for_is_refused(
    project: Project, champion: Config, workspace: Path
) -> None:
    name = champion.registry.model_name
    folder = workspace / "extra"
    shutil.copytree(Path(mlflow.artifacts.download_artifacts(f"models:/{name}@champion")), folder)
    (folder / "sitecustomize.py").write_text("raise SystemExit('ran')\n")
    version = register(champion, folder)
    with pytest.raises(ModelRefused, match=r"files a model has no use for: \['sitecustomize.py'\]"):
        validation.validate(project, tracking(champion), champion, name, version)


def test_the_image_is_built_from_the_files_promote_validated(
    project: Project, champion: Config, workspace: Path, trained: str
) -> None:
    """promote records the digest of what it checked; the image's build context is built
    from files with that digest only, its MLmodel written from the checked data."""
    name, store = champion.registry.model_name, tracking(champion)
    version = store.client.get_model_version(name, trained)
    loaded = registered.load(project, f"models:/{name}/{trained}", store.uri)
    assert version.tags["validation.digest"] == loaded.digest
    built = serving.dockerfile(project, store, name, trained, workspace / "ctx")
    assert "COPY model_dir/model /opt/ml/model" in built.read_text()
    mlmodel = yaml.safe_load((built.parent / "model_dir" / "model" / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert set(mlmodel) <= {"flavors", "signature", "mlflow_version", "saved_input_example_info"}

    lock = registry.lock_name(name)
    assert registry.validated(store.client, name, trained) == loaded.digest
    store.client.set_registered_model_tag(lock, registry.validated_tag(trained), "0" * 64)
    with pytest.raises(ModelRefused, match="are not the ones `promote` validated"):
        serving.dockerfile(project, store, name, trained, workspace / "ctx2")
    other = str(store.client.create_model_version(name, version.source, version.run_id).version)
    for key, value in version.tags.items():  # whoever registers may tag: forged verdicts
        store.client.set_model_version_tag(name, other, key, value)
    with pytest.raises(ModelRefused, match="has not passed the validation gate under `promote`"):
        serving.dockerfile(project, store, name, other, workspace / "ctx3")


def python_env_injecting(folder: Path) -> None:
    """A Python 'version' that would write lines into the serving image's Dockerfile."""
    env = yaml.safe_load((folder / "python_env.yaml").read_text())
    env["python"] = "3.11.7-slim AS base\nRUN touch /tmp/payload-ran\nFROM python:3.11.7"
    (folder / "python_env.yaml").write_text(yaml.safe_dump(env))


def python_env_extra_key(folder: Path) -> None:
    env = yaml.safe_load((folder / "python_env.yaml").read_text())
    (folder / "python_env.yaml").write_text(yaml.safe_dump(env | {"pip_options": "--pre"}))


def edit_mlmodel(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def edited(folder: Path) -> None:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
        edit(mlmodel)
        (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))

    return edited


@pytest.mark.parametrize(
    ("tamper", "refusal"),
    [
        (python_env_injecting, "python_env.yaml must hold a Python version"),
        (python_env_extra_key, "python_env.yaml must hold a Python version"),
        (
            edit_mlmodel(lambda m: m["flavors"]["sklearn"].update(loader="evil")),
            r"keys MLflow does not write: \['loader'\]",
        ),
        (edit_mlmodel(lambda m: m.update(flavors=["sklearn"])), "flavors in MLmodel is not a"),
        (
            edit_mlmodel(lambda m: m["flavors"]["python_function"].update(python_version="3.x")),
            "python_function flavor",
        ),
    ],
)
def test_a_tampered_copy_of_the_champion_is_refused(
    project: Project,
    champion: Config,
    workspace: Path,
    tamper: Callable[[Path], None],
    refusal: str,
) -> None:
    """The champion's own files with one field changed where serving would read it."""
    name = champion.registry.model_name
    copy = workspace / "tampered"
    shutil.copytree(Path(mlflow.artifacts.download_artifacts(f"models:/{name}@champion")), copy)
    (copy / "registered_model_meta").unlink()
    tamper(copy)
    version = register(champion, copy)
    for load in loaders(project, champion, version, workspace).values():
        with pytest.raises(ModelRefused, match=refusal):
            load()


def test_xgboost_loads_only_as_the_classifier_it_was_logged_as(project: Project) -> None:
    """MLflow's loader imports and instantiates the flavor's model_class: only XGBClassifier,
    in XGBoost's JSON or UBJSON, is accepted."""
    spec = project.model("boosted")
    logged = {"code": None, "data": "model.ubj", "model_format": "ubj", "xgb_version": "3.2.0",
              "model_class": "xgboost.sklearn.XGBClassifier"}  # fmt: skip
    spec.check_flavor(logged)
    for changed, refusal in [
        ({"model_class": "os.system"}, "model_class 'os.system'"),
        ({"model_class": None}, "model_class None"),
        ({"model_format": "deprecated"}, "only XGBoost's JSON or UBJSON"),
        ({"code": "code"}, "names code to load"),
        ({"loader_module": "evil"}, "keys MLflow does not write"),
    ]:
        with pytest.raises(ModelRefused, match=refusal):
            spec.check_flavor(logged | changed)
