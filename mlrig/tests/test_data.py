"""Data: fetched from DVC or written by the project's producer where DVC cannot restore it,
never over a file that is there; schema drift and gaps fail clearly."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from conftest import RAW

from mlrig import DataError, Project
from mlrig.backends.local import LocalBackend, LocalParams
from mlrig.data import dvc, fetch, file_md5, tracked_md5
from mlrig.inputs import check_raw


def load_splits(project: Project, seed: int = 42, cfg=None):
    data = cfg or project.load_params().data
    return LocalBackend(data, seed, LocalParams(kind="local")).load_splits()


def init_dvc(remote: str) -> None:
    for args in (("init", "--no-scm"), ("remote", "add", "-d", "team", remote)):
        assert dvc(*args).returncode == 0


def test_a_tracked_producer_writes_the_tracked_bytes_and_pushes_them(
    project: Project, workspace: Path
) -> None:
    Path(RAW).unlink()
    init_dvc(str(workspace / "storage"))
    message = fetch(project, project.load_params().data)
    assert "written by the blobs producer" in message and "pushed to the DVC remote" in message
    assert file_md5(Path(RAW)) == tracked_md5(RAW)
    Path(RAW).unlink()
    assert "pulled from the DVC remote" in fetch(project, project.load_params().data)


def test_doctor_notices_a_remote_that_lost_the_data(
    project: Project, workspace: Path, capsys
) -> None:
    """A DVC remote deleted or moved answers `dvc status --cloud` with everything missing:
    `doctor` says the remote does not hold the tracked data."""
    import mlrig

    Path(RAW).unlink()
    init_dvc(str(workspace / "storage"))
    fetch(project, project.load_params().data)  # written and pushed

    def remote_line() -> str:
        """The check's line, and its fix where there is one."""
        mlrig.main(project, ["doctor"])
        lines = capsys.readouterr().out.splitlines()
        (at,) = [i for i, line in enumerate(lines) if "DVC remote:" in line]
        return " ".join(lines[at : at + 2])

    assert remote_line().startswith("✓ DVC remote: reachable, holds the tracked data")
    shutil.rmtree(workspace / "storage")
    line = remote_line()
    assert line.startswith("✗ DVC remote: it does not hold the tracked data (data/raw/blobs.csv")
    assert "`dvc push` if it is new" in line


def test_unreachable_remote_keeps_the_verified_data_and_says_push_later(
    project: Project, workspace: Path
) -> None:
    """The remote cannot take the data: it is still written and verified, and the message
    says the push is pending; once the remote works, `dvc push` shares it."""
    Path(RAW).unlink()
    Path("not-a-folder").write_text("")
    init_dvc("not-a-folder/storage")
    message = fetch(project, project.load_params().data)
    assert "NOT pushed" in message and "then `dvc push`" in message
    assert file_md5(Path(RAW)) == tracked_md5(RAW)
    assert dvc("remote", "modify", "team", "url", str(workspace / "storage")).returncode == 0
    assert dvc("push").returncode == 0


def test_an_edited_raw_file_is_kept_and_the_message_says_what_to_do(
    project: Project, workspace: Path
) -> None:
    """`make data` never writes over the user's edit, whatever the remote holds."""
    init_dvc(str(workspace / "storage"))
    edited = Path(RAW).read_text().replace("\n1", "\n0", 1)
    Path(RAW).write_text(edited)
    message = fetch(project, project.load_params().data)
    assert "differs from the tracked version" in message and "kept as it is" in message
    assert f"`dvc checkout {RAW}.dvc` puts the tracked version back" in message
    assert Path(RAW).read_text() == edited


def test_without_a_producer_a_failed_pull_is_an_error(project: Project, workspace: Path) -> None:
    Path(RAW).unlink()
    init_dvc(str(workspace / "empty-storage"))
    data = replace(project.load_params().data, producer=None)
    with pytest.raises(DataError, match=rf"`dvc pull {RAW}.dvc` could not restore {RAW}"):
        fetch(project, data)
    assert not Path(RAW).exists()


def test_a_producer_that_writes_other_bytes_leaves_nothing(
    project: Project, workspace: Path
) -> None:
    Path(RAW).unlink()
    init_dvc(str(workspace / "empty-storage"))
    data = project.load_params().data
    other = replace(data, producer=replace(data.producer, rows=300))
    with pytest.raises(DataError, match=r"the blobs producer wrote md5 .* but .* tracks"):
        fetch(project, other)
    assert not Path(RAW).exists()


def test_an_untracked_producer_generates_its_data_each_time(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = project.composed(["data=partitions", "data.producer.rows=12000"]).data
    assert fetch(project, data) == "data/raw/partitions generated: 12000 rows (seed 42)"
    parts = sorted(Path(data.raw_path).glob("*.parquet"))
    assert len(parts) == 3
    first = pd.read_parquet(data.raw_path)
    fetch(project, data)
    pd.testing.assert_frame_equal(first, pd.read_parquet(data.raw_path))


def test_missing_data_says_make_data(project: Project, workspace: Path) -> None:
    Path(RAW).unlink()
    with pytest.raises(DataError, match="run `make data`"):
        load_splits(project)


def _rewrite(change) -> None:
    change(pd.read_csv(RAW)).to_csv(RAW, index=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["f0"]), r"missing columns \['f0'\]"),
        (lambda f: f.assign(extra=1.0), r"unexpected columns \['extra'\]"),
        (lambda f: f.assign(f3="big"), "must be numeric"),
        (lambda f: f.assign(target=f["target"] + 1), "must be binary"),
        (lambda f: f.assign(target=0), "has only class 0: a binary classifier needs rows of both"),
        (
            lambda f: f.assign(target=(f.index < 3).astype(int)),
            "has 3 rows of class 1; each class needs at least 5 so that every split",
        ),
        (lambda f: f.head(50), "has 50 data rows; data.min_rows is 100"),
        (lambda f: f.head(0), "has 0 data rows"),  # a header only: not "non-numeric"
        (lambda f: f.head(50).drop(columns=["f0"]), "has 50 data rows"),  # rows first
        (lambda f: f.drop(columns=["f3"]).assign(extra="x"), "missing columns"),
        (lambda f: f.assign(target=f["target"].where(f.index > 2)), "has 3 missing values"),
        (
            lambda f: f.assign(f3=f["f3"].where(f.index > 4)),
            r"missing values in features \{'f3': 5\}.*data.missing_values=allow",
        ),
    ],
)
def test_schema_drift_is_refused(project: Project, workspace: Path, change, message: str) -> None:
    _rewrite(change)
    with pytest.raises(DataError, match=message):
        load_splits(project)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\x00", "cannot be read as a CSV text file: "),
        (b"", "cannot be read as a CSV text file: No columns to parse from file"),
    ],
)
def test_a_raw_file_that_is_no_csv_is_one_line(
    project: Project, workspace: Path, content: bytes, said: str
) -> None:
    """Before DVC writes (`check`) and in the stage alike."""
    Path(RAW).write_bytes(content)
    for read in (lambda: check_raw(project.load_params().data), lambda: load_splits(project)):
        with pytest.raises(DataError, match=said) as refused:
            read()
        assert "\n" not in str(refused.value)


def test_missing_feature_values_pass_when_allowed(project: Project, workspace: Path) -> None:
    _rewrite(lambda f: f.assign(f3=f["f3"].where(f.index > 4)))
    allowed = replace(project.load_params().data, missing_values="allow")
    splits = load_splits(project, cfg=allowed)
    assert sum(p["f3"].isna().sum() for p in (splits.train, splits.valid, splits.test)) == 5


def test_split_is_stratified_and_disjoint(project: Project, workspace: Path) -> None:
    frame = pd.read_csv(RAW)
    splits = load_splits(project, seed=1)
    parts = [splits.train, splits.valid, splits.test]
    assert sum(len(p) for p in parts) == len(frame)
    assert len(set().union(*(set(p.index) for p in parts))) == len(frame)
    rate = frame["target"].mean()
    assert all(abs(p["target"].mean() - rate) < 0.05 for p in parts)


def test_the_split_is_that_of_splitting_the_frame_itself(project: Project, workspace: Path) -> None:
    """Row positions are split, not the frame; the same seed still gives the rows that
    train_test_split of the frame itself gives (earlier versions' splits): an upgrade of the
    library moves no row from one split to another."""
    from sklearn.model_selection import train_test_split

    data, frame = project.load_params().data, pd.read_csv(RAW)
    rest, test = train_test_split(
        frame, test_size=data.test_size, random_state=7, stratify=frame["target"]
    )
    train, valid = train_test_split(
        rest, test_size=data.valid_size / (1 - data.test_size), random_state=7,
        stratify=rest["target"],
    )  # fmt: skip
    splits = load_splits(project, seed=7)
    for mine, expected in ((splits.train, train), (splits.valid, valid), (splits.test, test)):
        pd.testing.assert_frame_equal(mine, expected)
