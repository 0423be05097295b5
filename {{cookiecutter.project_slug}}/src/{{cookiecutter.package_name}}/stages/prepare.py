"""Stage `prepare`: the raw data, its schema checked, split and written to data.processed_dir."""

from __future__ import annotations

from pathlib import Path

from ..backends import backend_for
from ..config import Config
from ..data import DataError
from . import committed, main, restore


def prepare(cfg: Config) -> None:
    backend = backend_for(cfg)
    pointer = Path(f"{cfg.data.raw_path}.dvc")
    with backend.session():
        try:
            splits = backend.load_splits()
        except DataError as err:  # `dvc repro` has recorded the refused file already
            note = restore(pointer, committed(pointer), "the committed pointer")
            raise DataError(f"{err}{note}") from err
        backend.write_splits(splits)


if __name__ == "__main__":
    main(prepare)
