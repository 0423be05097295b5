"""Where `score` writes: a local .csv or .parquet file, checked before anything runs, written
partition by partition to a temporary file beside it that replaces it only at the end (a
failed scoring leaves nothing there, not even a partial file). Every partition is written
with the same columns in the same order, and the same types (Parquet)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data import DataError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .batches import Batch

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# What `score` adds to each row; a batch may not bring columns of these names.
SCORE_COLUMNS = (
    "prediction", "probability_0", "probability_1",
    "model_name", "model_version", "run_id", "scored_at",
)  # fmt: skip


def destination(output: str, batch: Batch) -> Path:
    """`output`, refused unless it is a .csv or .parquet file that can be written, outside
    the batch: not one of its files, nor in the folder a folder or glob batch reads."""
    path = Path(output)
    if "://" in output or path.suffix.lower() not in FORMATS:
        raise DataError(f"--output {output}: predictions go to a local .csv or .parquet file")
    if path.is_dir():
        raise DataError(f"--output {output} is a folder: name a file in it")
    existing = next(parent for parent in path.absolute().parents if parent.exists())
    if not existing.is_dir():
        raise DataError(f"--output {output}: {existing} is a file, not a folder")
    if batch.local:
        target = path.resolve()
        read = {Path(info.path) for info in batch.files}
        folders = {file.parent for file in read} if batch.many else set()
        if target in read or any(folder in (target, *target.parents) for folder in folders):
            raise DataError(
                f"--output {output} is inside the batch {batch.source}: the next scoring "
                "would read the predictions; write them elsewhere"
            )
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Predictions:
    """The output file being written: `commit` moves it in place, `discard` removes it."""

    def __init__(self, path: Path, columns: list[str], schema: pa.Schema | None) -> None:
        self.path = path
        self.columns = columns  # in the order the first partition gave them
        self.schema = schema  # the batch's own columns' types (Parquet), unified
        self.parquet = FORMATS[path.suffix.lower()] == "parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(handle)
        self.partial = Path(name)
        self.writer: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        frame = frame[[*self.columns, *SCORE_COLUMNS]]
        if not self.parquet:
            first = self.writer is None
            frame.to_csv(self.partial, mode="w" if first else "a", header=first, index=False)
            self.writer = True
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            scores = pa.Schema.from_pandas(frame[list(SCORE_COLUMNS)], preserve_index=False)
            own = self.schema or pa.schema([])
            self.writer = pq.ParquetWriter(self.partial, pa.unify_schemas([own, scores]))
        table = pa.Table.from_pandas(frame, self.writer.schema, preserve_index=False)
        self.writer.write_table(table)

    def _close(self) -> None:
        if self.parquet and self.writer is not None:
            self.writer.close()

    def commit(self) -> None:
        self._close()
        self.partial.chmod(0o666 & ~_umask())  # as any file the user writes (mkstemp: 0600)
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        self._close()
        self.partial.unlink(missing_ok=True)
