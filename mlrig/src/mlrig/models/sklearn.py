"""scikit-learn model kinds, saved with skops: never pickle."""

from __future__ import annotations

import json
import re
import zipfile
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from .base import Labelled, ModelRefused, ModelSpec, P, TrainResult, pinned


class SklearnModel(ModelSpec[P]):
    """A scikit-learn estimator (or pipeline), saved with skops: never pickle. Loading trusts
    skops' default types and `trusted_types` (none), never the list a model file carries."""

    flavor = "sklearn"
    requirements = frozenset({"mlflow", "scikit-learn", "skops"})
    flavor_keys = frozenset(
        {"code", "pickled_model", "serialization_format", "sklearn_version", "skops_trusted_types"}
    )
    trusted_types: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def estimator(self, params: P, seed: int) -> Any:
        """The unfitted estimator (or pipeline) these parameters describe."""

    def fit(self, params: P, seed: int, train: Labelled, valid: Labelled) -> TrainResult:
        """Fit the estimator on `train` (scikit-learn reports no per-iteration history)."""
        model = self.estimator(params, seed)
        model.fit(train.features, train.target)
        return TrainResult(model=model)

    def native_file(self, flavor: dict[str, Any]) -> str:
        return str(flavor.get("pickled_model"))

    def serving(self, flavor: dict[str, Any]) -> dict[str, Any]:
        return super().serving(flavor) | {
            "model_path": self.native_file(flavor),
            "predict_fn": "predict",
        }

    def answering_probabilities(
        self, flavor: dict[str, Any], pyfunc: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """`predict_proba`: each row answers [P(0), P(1)]."""
        return flavor, pyfunc | {"predict_fn": "predict_proba"}

    def check_flavor(self, flavor: dict[str, Any]) -> None:
        """skops, trusting no type beyond skops' defaults and `trusted_types` (MLflow's loader
        trusts the list the file carries)."""
        super().check_flavor(flavor)
        if flavor.get("serialization_format") != "skops":
            raise ModelRefused(
                f"serialization_format {flavor.get('serialization_format')!r}: only skops loads "
                "without running code"
            )
        trusted = flavor.get("skops_trusted_types")
        if trusted is not None and (
            not isinstance(trusted, list) or not set(map(str, trusted)) <= set(self.trusted_types)
        ):
            raise ModelRefused(
                f"the model file trusts the types {trusted!r}; only this kind's trusted_types "
                f"{list(self.trusted_types)} may be trusted"
            )

    def read_native(self, path: Path) -> Any:
        """skops' loader, trusting its default types and `trusted_types` alone."""
        import skops.io
        from skops.io.exceptions import UntrustedTypesFoundException

        try:
            return skops.io.load(path, list(self.trusted_types))
        except UntrustedTypesFoundException as error:
            raise ModelRefused(f"the skops file holds untrusted types: {error}") from error

    def normalize(self, folder: Path) -> None:
        """skops names its entries by object ids and stamps them with the time: rewrite the
        file with ids numbered in order and a fixed time, so the same model is the same bytes
        (DVC tracks the train stage's model)."""
        for path in folder.glob("*.skops"):
            stable_skops(path)

    def save_options(self) -> dict[str, Any]:
        import mlflow.sklearn

        return {
            "serialization_format": mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            "skops_trusted_types": list(self.trusted_types) or None,
            "pip_requirements": pinned("mlflow", "scikit-learn", "skops"),
        }


SCHEMA = "schema.json"
ARRAY = re.compile(r"\A(\d+)\.npy\Z")  # an array's entry, named by its object id
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


def stable_skops(path: Path) -> None:
    """Renumber a skops file's object ids (its schema's `__id__`s and the `<id>.npy` entries)
    in the order they first appear, and give every entry the same time."""
    with zipfile.ZipFile(path) as packed:
        entries = [(info, packed.read(info)) for info in packed.infolist()]
    numbers: dict[int, int] = {}

    def renumbered(node: Any) -> Any:
        if isinstance(node, list):
            return [renumbered(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key == "__id__" and isinstance(value, int):
                value = numbers.setdefault(value, len(numbers) + 1)
            elif key == "file" and isinstance(value, str) and (found := ARRAY.match(value)):
                value = f"{numbers.setdefault(int(found[1]), len(numbers) + 1)}.npy"
            out[key] = renumbered(value)
        return out

    schema = next(data for info, data in entries if info.filename == SCHEMA)
    rewritten = json.dumps(renumbered(json.loads(schema)), indent=2).encode()

    def name(old: str) -> str:
        found = ARRAY.match(old)
        return f"{numbers[int(found[1])]}.npy" if found else old

    with zipfile.ZipFile(path, "w") as packed:
        for info, data in entries:
            entry = zipfile.ZipInfo(name(info.filename), date_time=EPOCH)
            entry.compress_type = info.compress_type
            packed.writestr(entry, rewritten if info.filename == SCHEMA else data)
