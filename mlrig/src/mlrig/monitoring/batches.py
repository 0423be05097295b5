"""A batch to score: a file, a folder, a glob of Parquet or CSV files, or the same on S3
(`s3://bucket/key`, `s3://bucket/prefix/*.parquet`), read partition by partition so that
memory stays bounded. An S3 endpoint other than AWS comes from AWS_ENDPOINT_URL_S3,
AWS_ENDPOINT_URL or MLFLOW_S3_ENDPOINT_URL; the credentials from AWS_* variables."""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..data import DataError

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


@dataclass(frozen=True)
class Batch:
    """The files of one batch, in name order, with the filesystem that reads them."""

    source: str
    filesystem: FileSystem
    files: list[FileInfo]

    @property
    def name(self) -> str:
        """What the batch is called in MLflow: its last path segment, glob and all."""
        return self.source.rstrip("/").rsplit("/", 1)[-1] or self.source

    @property
    def digest(self) -> str:
        """sha256 of each file's path, size and modification time (not its bytes: a batch is
        read once)."""
        digest = hashlib.sha256()
        for info in self.files:
            digest.update(f"{info.path}\0{info.size}\0{info.mtime_ns}\n".encode())
        return digest.hexdigest()[:16]

    def partitions(self, rows: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The batch, at most `rows` rows at a time, file after file; only those of `columns`
        that a file has, when given (a column it lacks is for the caller to notice)."""
        import pandas as pd
        import pyarrow.parquet as pq

        for info in self.files:
            try:
                if _format(info.path) == "parquet":
                    with self.filesystem.open_input_file(info.path) as handle:
                        table = pq.ParquetFile(handle)
                        kept = _kept(table.schema_arrow.names, columns)
                        for piece in table.iter_batches(batch_size=rows, columns=kept):
                            yield piece.to_pandas()
                else:
                    with self.filesystem.open_input_stream(info.path) as handle:
                        header = pd.read_csv(handle, nrows=0).columns
                    with self.filesystem.open_input_stream(info.path) as handle:
                        kept = _kept(list(header), columns)
                        yield from pd.read_csv(handle, chunksize=rows, usecols=kept)
            except (ValueError, OSError) as error:  # pandas' and pyarrow's parse errors
                said = str(error).strip().splitlines()
                raise DataError(
                    f"{info.path} cannot be read as {_format(info.path)}: "
                    f"{said[0] if said else type(error).__name__}"
                ) from error


def _kept(names: list[str], wanted: list[str] | None) -> list[str] | None:
    return None if wanted is None else [name for name in names if name in set(wanted)]


def resolve(source: str) -> Batch:
    """The files `source` names; refused with one line when it names none, or a file that is
    neither Parquet nor CSV."""
    from pyarrow.fs import FileSelector, FileType, LocalFileSystem

    if source.startswith("s3://"):
        filesystem = _s3()
        path = source.removeprefix("s3://")
        pattern = path if glob.has_magic(path) else None
        if pattern is None:
            found = [filesystem.get_file_info(path)]
            if found[0].type == FileType.Directory:
                found = filesystem.get_file_info(FileSelector(path, recursive=True))
        else:
            base = path[: min(path.find(c) for c in "*?[" if c in path)].rsplit("/", 1)[0]
            listed = filesystem.get_file_info(FileSelector(base, recursive=True))
            found = [info for info in listed if fnmatch.fnmatchcase(info.path, pattern)]
    elif "://" in source:
        raise DataError(f"{source}: a batch is a local path, a glob, or an s3:// URL")
    else:
        filesystem = LocalFileSystem()
        if Path(source).is_dir():
            paths = [str(p) for p in Path(source).rglob("*") if p.is_file()]
        else:
            paths = glob.glob(source, recursive=True) if glob.has_magic(source) else [source]
        found = filesystem.get_file_info([str(Path(p).resolve()) for p in paths])
    files = sorted((i for i in found if i.type == FileType.File), key=lambda i: i.path)
    if not files:
        raise DataError(f"{source} names no file: give a file, a folder, a glob or an s3:// URL")
    if Path(source).is_dir() or glob.has_magic(source) or source.startswith("s3://"):
        kept = [info for info in files if _format(info.path)]
        files = kept or files
    unknown = [info.path for info in files if not _format(info.path)]
    if unknown:
        raise DataError(f"{unknown[0]} is neither Parquet (.parquet) nor CSV (.csv, .csv.gz)")
    return Batch(source, filesystem, files)
