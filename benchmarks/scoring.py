"""`score`'s batch path against bare `booster.predict`, on ROWS rows (default 1M) of the baked
project's features, resampled from its raw data into Parquet partitions of 100k rows.

- `bare`: `booster.predict(DMatrix(features))` on the rows already in memory: the model's
  own cost, nothing else.
- `score`: what `score` does between loading the model and logging its run: read every
  partition, check it against the profile (pandera) and count a sample of it into the drift
  histograms, read it again, score it, count P(1), write the predictions (Parquet), and move
  the file in place.

RUNS times each, interleaved; min/median/max seconds, rows/s and the ratio of medians. Run
from a baked XGBoost project's root after `make setup run` (see `make bench`)."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from mlrig.models import registered
from mlrig.monitoring import batches, drift, output, profile, scoring

from common import project

RUNS = int(os.environ.get("RUNS", 3))
ROWS = int(os.environ.get("ROWS", 1_000_000))
PARTITION = 100_000


def main() -> None:
    import xgboost as xgb

    wired = project()
    cfg = wired.load_params()
    loaded = registered.load(wired, str(Path("models/model").resolve()), "sqlite:///:memory:")
    raw = pd.read_csv(cfg.data.raw_path)[cfg.data.features]
    scores = loaded.spec.scores(loaded.model, raw)
    reference = profile.derive(raw, cfg.data.features, scores, cfg.monitor)
    rng = np.random.default_rng(0)
    features = raw.iloc[rng.integers(0, len(raw), ROWS)].reset_index(drop=True)
    booster = loaded.model.get_booster()
    labels = {"model_name": "bench", "model_version": "1", "run_id": "bench", "scored_at": "now"}
    with tempfile.TemporaryDirectory(prefix="scoring-bench-") as scratch:
        folder = Path(scratch) / "batch"
        folder.mkdir()
        for start in range(0, ROWS, PARTITION):
            part = features.iloc[start : start + PARTITION]
            part.to_parquet(folder / f"part-{start // PARTITION:04d}.parquet", index=False)
        batch = batches.resolve(str(folder))

        def bare() -> None:
            booster.predict(xgb.DMatrix(features))

        def score() -> None:
            histograms = drift.Histograms(reference)
            checked = scoring.check_batch(batch, reference, cfg, histograms)
            out = Path(scratch) / "predictions.parquet"
            written = output.Predictions(out, checked.columns, checked.schema)
            scoring.write_predictions(batch, cfg, loaded, reference, labels, written, histograms)
            written.commit()

        times: dict[str, list[float]] = {"bare": [], "score": []}
        for _ in range(RUNS):
            for name, step in (("bare", bare), ("score", score)):
                started = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - started)
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name}: min {min(values):.2f} s, median {median:.2f} s, max {max(values):.2f} s, "
            f"{ROWS / median:,.0f} rows/s ({RUNS} runs, interleaved, {ROWS:,} rows)"
        )
    ratio = statistics.median(times["score"]) / statistics.median(times["bare"])
    print(f"score / bare booster.predict: {ratio:.2f}x")


if __name__ == "__main__":
    main()
