"""Stage `prepare`: the raw data, its schema checked, split and written to data.processed_dir."""

import mlrig

from ..project import PROJECT

if __name__ == "__main__":
    mlrig.stage(PROJECT, "prepare")
