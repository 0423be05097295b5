"""A batch to score: a file, a folder, a glob of Parquet or CSV files, or the same on S3
(`s3://bucket/key`, `s3://bucket/prefix/`, `s3://bucket/prefix/*.parquet`: a `*` stays within
one path segment, as a local glob's does), read partition by partition so that memory stays
bounded. An S3 endpoint other than AWS comes from AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or
MLFLOW_S3_ENDPOINT_URL; the credentials from AWS_* variables."""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..data import DataError, unreadable

if TYPE_CHECKING:
    import pandas as pd
    from pyarrow.fs import FileInfo, FileSystem

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv"}
ENDPOINTS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL")


def _format(path: str) -> str | None:
    return next((kind for suffix, kind in FORMATS.items() if path.lower().endswith(suffix)), None)


def _s3() -> FileSystem:
    from pyarrow.fs import S3FileSystem

    endpoint = next((os.environ[name] for name in ENDPOINTS if os.environ.get(name)), None)
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    return S3FileSystem(endpoint_override=endpoint, region=region)


def _listing(files: list[FileInfo]) -> str:
    return "".join(f"{info.path}\0{info.size}\0{info.mtime_ns}\n" for info in files)


@dataclass(frozen=True)
class Batch:
    """The files of one batch, in name order, with the filesystem that reads them; `many`:
    named by a folder, a prefix or a glob (not one file)."""

    source: str
    filesystem: FileSystem
    files: list[FileInfo]
    many: bool

    @property
    def local(self) -> bool:
        return not self.source.startswith("s3://")

    @property
    def name(self) -> str:
        """What the batch is called in MLflow: its last path segment, glob and all."""
        return self.source.rstrip("/").rsplit("/", 1)[-1] or self.source

    @property
    def digest(self) -> str:
        """sha256 of each file's path, size and modification time (not its bytes: a batch is
        read twice, not three times)."""
        return hashlib.sha256(_listing(self.files).encode()).hexdigest()[:16]

    def unchanged(self) -> None:
        """Refuse a batch whose files changed since they were listed (between the check and
        the scoring, say)."""
        now = self.filesystem.get_file_info([info.path for info in self.files])
        if _listing(now) != _listing(self.files):
            raise DataError(
                f"{self.source} changed while it was being scored (a file was rewritten or "
                "removed): nothing was written; score it again once it is complete"
            )

    def partitions(self, rows: int, numeric: list[str]) -> Iterator[pd.DataFrame]:
        """The batch, at most `rows` rows at a time, file after file. A CSV's columns other
        than `numeric` are read as text (an id keeps its leading zeros; each partition gets the
        same types)."""
        import pandas as pd
        import pyarrow.parquet as pq

        for info in self.files:
            kind = _format(info.path)
            try:
                if kind == "parquet":
                    with self.filesystem.open_input_file(info.path) as handle:
                        for piece in pq.ParquetFile(handle).iter_batches(batch_size=rows):
                            yield piece.to_pandas()
                    continue
                with self.filesystem.open_input_stream(info.path) as handle:
                    header = pd.read_csv(handle, nrows=0).columns
                text = {column: str for column in header if column not in numeric}
                with self.filesystem.open_input_stream(info.path) as handle:
                    yield from pd.read_csv(handle, chunksize=rows, dtype=text)
            except (ValueError, OSError) as error:  # pandas' and pyarrow's parse errors
                raise unreadable(info.path, f"a {kind} file", error) from error


def _matching(pattern: str, path: str) -> bool:
    """A glob's match, segment by segment (`*` never crosses a `/`)."""
    wanted, found = pattern.split("/"), path.split("/")
    return len(wanted) == len(found) and all(map(fnmatch.fnmatchcase, found, wanted))


def _on_s3(source: str) -> tuple[FileSystem, list[FileInfo], bool]:
    from pyarrow.fs import FileSelector, FileType

    path = source.removeprefix("s3://")
    bucket = path.split("/", 1)[0]
    if not bucket or glob.has_magic(bucket):
        raise DataError(f"{source}: name the bucket, e.g. s3://bucket/prefix/*.parquet")
    filesystem = _s3()
    try:
        if glob.has_magic(path):
            base = path[: min(path.find(c) for c in "*?[" if c in path)].rsplit("/", 1)[0]
            listed = filesystem.get_file_info(FileSelector(base, recursive=True))
            return filesystem, [i for i in listed if _matching(path, i.path)], True
        (found,) = filesystem.get_file_info([path])
        if found.type == FileType.Directory:
            return filesystem, filesystem.get_file_info(FileSelector(path, recursive=True)), True
        return filesystem, [found], False
    except OSError as error:
        raise unreadable(source, "an S3 location", error) from error


def resolve(source: str) -> Batch:
    """The files `source` names; refused with one line when it names none, or a file that is
    neither Parquet nor CSV."""
    from pyarrow.fs import FileType, LocalFileSystem

    if source.startswith("s3://"):
        filesystem, found, many = _on_s3(source)
    elif "://" in source:
        raise DataError(f"{source}: a batch is a local path, a glob, or an s3:// URL")
    else:
        filesystem = LocalFileSystem()
        many = Path(source).is_dir() or glob.has_magic(source)
        if Path(source).is_dir():
            paths = [str(p) for p in Path(source).rglob("*") if p.is_file()]
        else:
            paths = glob.glob(source, recursive=True) if glob.has_magic(source) else [source]
        found = filesystem.get_file_info([str(Path(p).resolve()) for p in paths])
    files = sorted((i for i in found if i.type == FileType.File), key=lambda i: i.path)
    if many:
        files = [info for info in files if _format(info.path)] or files
    if not files:
        raise DataError(f"{source} names no file: give a file, a folder, a glob or an s3:// URL")
    unknown = [info.path for info in files if not _format(info.path)]
    if unknown:
        raise DataError(f"{unknown[0]} is neither Parquet (.parquet) nor CSV (.csv, .csv.gz)")
    return Batch(source, filesystem, files, many)
