"""Each model kind of the table: it trains on the data, reports one importance per feature,
and saves a native model directory that is the same bytes for the same model and loads back
with the native loader alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import FAST, RAW
from mlrig import Labelled

from {{ cookiecutter.package_name }}.models import SPECS
from {{ cookiecutter.package_name }}.project import PROJECT


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_a_model_kind_trains_and_saves_byte_stable(kind: str, workspace: Path) -> None:
    cfg = PROJECT.composed([f"model={kind}", *(FAST if kind == "xgboost" else [])])
    spec = PROJECT.spec(cfg.model)
    frame = pd.read_csv(RAW)
    features = frame[cfg.data.features]
    split = Labelled(features, frame[cfg.data.target])
    model = spec.fit(cfg.model, cfg.seed, split, split).model
    assert len(spec.importance(model)) == len(cfg.data.features)
    saved = [spec.save(model, Path(name), features.head(100)) for name in ("a", "b")]
    assert saved[0] == saved[1]  # the same model_uuid: a digest of the same bytes
    flavor = yaml.safe_load(Path("a/MLmodel").read_text())["flavors"][spec.flavor]
    loaded = spec.load_native(Path("a"), flavor)
    assert (spec.scores(loaded, features) == spec.scores(model, features)).all()
