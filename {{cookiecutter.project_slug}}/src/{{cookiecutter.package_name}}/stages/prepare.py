"""Stage `prepare`: the raw data, its schema checked, split and written to data.processed_dir."""

from __future__ import annotations

from ..backends import backend_for
from ..config import Config
from . import main


def prepare(cfg: Config) -> None:
    backend = backend_for(cfg)
    with backend.session():
        backend.write_splits(backend.load_splits())


if __name__ == "__main__":
    main(prepare)
