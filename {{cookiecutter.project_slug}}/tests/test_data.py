"""Data: the materialised CSV is the DVC-tracked version; drift and gaps fail clearly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.backends.local import LocalBackend, LocalParams
from {{ cookiecutter.package_name }}.config import PROJECT_ROOT, ConfigError
from {{ cookiecutter.package_name }}.data import DataError, dvc, fetch, file_md5, materialize, tracked_md5
from {{ cookiecutter.package_name }}.settings import composed, load_params

CFG = load_params(PROJECT_ROOT / "params.yaml").data


def load_splits(seed: int = 42, cfg=CFG):
    return LocalBackend(cfg, seed, LocalParams(kind="local")).load_splits()


def test_materialised_bytes_match_the_tracked_md5(tmp_path: Path) -> None:
    path = materialize(tmp_path / "data.csv")
    assert file_md5(path) == tracked_md5(PROJECT_ROOT / CFG.raw_path)


def test_unreachable_remote_keeps_the_verified_data_and_says_push_later(
    workspace: Path,
) -> None:
    """The remote cannot take the data: it is still materialised and verified, and the
    message says the push is pending; once the remote works, `dvc push` shares it."""
    Path(CFG.raw_path).unlink()
    Path("not-a-folder").write_text("")
    for args in (("init", "--no-scm"), ("remote", "add", "-d", "team", "not-a-folder/storage")):
        assert dvc(*args).returncode == 0
    message = fetch(CFG)
    assert "NOT pushed" in message and "then `dvc push`" in message
    assert file_md5(Path(CFG.raw_path)) == tracked_md5(CFG.raw_path)
    assert dvc("remote", "modify", "team", "url", str(workspace / "storage")).returncode == 0
    assert dvc("push").returncode == 0


def test_missing_data_says_dvc_pull(workspace: Path) -> None:
    Path(CFG.raw_path).unlink()
    with pytest.raises(DataError, match="dvc pull"):
        load_splits()


def _rewrite(change) -> None:
    frame = pd.read_csv(CFG.raw_path)
    change(frame).to_csv(CFG.raw_path, index=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["mean_radius"]), r"missing columns \['mean_radius'\]"),
        (lambda f: f.assign(extra=1.0), r"unexpected columns \['extra'\]"),
        (lambda f: f.assign(mean_area="big"), "must be numeric"),
        (lambda f: f.assign(target=f["target"] + 1), "must be binary"),
        (lambda f: f.head(50), "has 50 data rows; data.min_rows is 100"),
        (lambda f: f.head(0), "has 0 data rows"),  # a header only: not "non-numeric"
        (lambda f: f.head(50).drop(columns=["mean_radius"]), "has 50 data rows"),  # rows first
        (lambda f: f.drop(columns=["mean_area"]).assign(extra="x"), "missing columns"),
        (lambda f: f.assign(target=f["target"].where(f.index > 2)), "has 3 missing values"),
        (
            lambda f: f.assign(mean_area=f["mean_area"].where(f.index > 4)),
            r"missing values in features \{'mean_area': 5\}.*data.missing_values=allow",
        ),
    ],
)
def test_schema_drift_is_refused(workspace: Path, change, message: str) -> None:
    _rewrite(change)
    with pytest.raises(DataError, match=message):
        load_splits()


def test_missing_feature_values_pass_when_allowed(workspace: Path) -> None:
    _rewrite(lambda f: f.assign(mean_area=f["mean_area"].where(f.index > 4)))
    splits = load_splits(cfg=replace(CFG, missing_values="allow"))
    assert sum(p["mean_area"].isna().sum() for p in (splits.train, splits.valid, splits.test)) == 5


def test_allowing_missing_values_needs_a_model_kind_that_handles_them() -> None:
    with pytest.raises(ConfigError, match="logistic_regression does not"):
        composed(["data.missing_values=allow", "model=logistic_regression"])
    with pytest.raises(ConfigError, match="missing_values must be refuse or allow"):
        composed(["data.missing_values=skip"])


def test_split_is_stratified_and_disjoint(workspace: Path) -> None:
    frame = pd.read_csv(CFG.raw_path)
    splits = load_splits(seed=1)
    parts = [splits.train, splits.valid, splits.test]
    assert sum(len(p) for p in parts) == len(frame)
    assert len(set().union(*(set(p.index) for p in parts))) == len(frame)
    rate = frame[CFG.target].mean()
    assert all(abs(p[CFG.target].mean() - rate) < 0.05 for p in parts)
