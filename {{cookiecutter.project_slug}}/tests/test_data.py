"""The producers: the breast-cancer rows are the DVC-tracked version, byte for byte; synthetic
data is deterministic and partitioned."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import yaml

from {{ cookiecutter.package_name }}.project import PROJECT

RAW = "data/raw/breast_cancer.csv"


def test_the_breast_cancer_rows_are_the_tracked_version(tmp_path: Path) -> None:
    data = PROJECT.load_params(PROJECT.root / "params.yaml").data
    PROJECT.producer(data.producer).produce(tmp_path / "raw.csv", data.producer, data)
    tracked = yaml.safe_load((PROJECT.root / f"{RAW}.dvc").read_text())["outs"][0]["md5"]
    assert hashlib.md5((tmp_path / "raw.csv").read_bytes(), usedforsecurity=False).hexdigest() == (
        tracked
    )
    columns = pd.read_csv(tmp_path / "raw.csv").columns
    assert list(columns) == [*data.features, data.target]


def test_synthetic_data_is_deterministic_and_partitioned(tmp_path: Path) -> None:
    data = PROJECT.composed(
        ["data=synthetic", "data.producer.n_rows=2000", "data.producer.partition_rows=500"]
    ).data
    producer = PROJECT.producer(data.producer)
    assert not producer.tracked
    for name in ("a", "b"):
        producer.produce(tmp_path / name, data.producer, data)
    assert len(list((tmp_path / "a").glob("*.parquet"))) == 4
    frame = pd.read_parquet(tmp_path / "a")
    pd.testing.assert_frame_equal(frame, pd.read_parquet(tmp_path / "b"))
    assert frame.shape == (2000, len(data.features) + 1)
    assert {str(t) for t in frame[data.features].dtypes} == {"float32"}
    assert 0.2 < frame[data.target].mean() < 0.8
