"""`score`: a registered model (by default @champion) scores a batch, partition by partition.

The model is loaded as untrusted input, by its native loader (`models.registered`). Every
partition is first checked against the schema derived from the model's training split
(`quality`) and counted into the drift histograms (`drift`); only a batch that passes is
scored, and its predictions -- the label, each class's probability, the model version, the
scoring run and the time -- are written to a temporary file that replaces the output at the
end. Each scoring is an MLflow run of its own (tag `run.kind=inference`), its input dataset
linked to the model that scored it, its drift metrics and report logged to it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data import DataError
from ..models import registered
from ..registry import resolve
from . import batches, drift, quality
from .profile import PROFILE, Profile, ProfileError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

    from ..config import Config
    from ..project import Project
    from ..tracking.run import RunLogger
    from ..tracking.store import Tracking

log = logging.getLogger(__name__)
RUN_KIND = {"run.kind": "inference"}


@dataclass(frozen=True)
class Outcome:
    rows: int
    output: Path
    run_id: str
    uri: str
    drift: drift.Drift
    seconds: float

    def __str__(self) -> str:
        rate = self.rows / self.seconds if self.seconds else 0.0
        return (
            f"Scored {self.rows} rows with {self.uri} -> {self.output} "
            f"({rate:,.0f} rows/s; run {self.run_id})"
        )


def model_id(version: ModelVersion) -> str | None:
    """The logged model a version was registered from (its source models:/m-...)."""
    source = version.source or ""
    return version.model_id or (source.removeprefix("models:/") if "/m-" in source else None)


def reference_profile(tracking: Tracking, version: ModelVersion) -> Profile:
    """The profile the version's training run logged (PROFILE), checked."""
    from mlflow.exceptions import MlflowException

    where = f"{PROFILE} of run {version.run_id}"
    try:
        with tempfile.TemporaryDirectory(prefix="profile-") as scratch:
            path = tracking.client.download_artifacts(version.run_id, PROFILE, scratch)
            return Profile.from_json(Path(path).read_text(), where)
    except (MlflowException, OSError) as error:
        raise ProfileError(
            f"version {version.version} of {version.name} has no {where}: it was trained "
            "before monitoring profiles were logged; train and promote a new version to score "
            "with checks"
        ) from error


def _progress(label: str) -> Any:
    from tqdm import tqdm

    return tqdm(desc=label, unit=" rows", unit_scale=True, disable=None, leave=False)


class Predictions:
    """The output, written partition by partition to a temporary file beside it; `commit`
    moves it in place, and an unfinished one is removed."""

    def __init__(self, destination: Path) -> None:
        self.destination = destination
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
        os.close(handle)
        self.partial = Path(name)
        self.parquet = destination.suffix.lower() in (".parquet", ".pq")
        self.writer: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self.writer is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                self.writer = pq.ParquetWriter(self.partial, table.schema)
            else:
                table = pa.Table.from_pandas(frame, self.writer.schema, preserve_index=False)
            self.writer.write_table(table)
        else:
            first = self.writer is None
            frame.to_csv(self.partial, mode="w" if first else "a", header=first, index=False)
            self.writer = True

    def commit(self) -> None:
        if self.parquet and self.writer is not None:
            self.writer.close()
        os.replace(self.partial, self.destination)

    def discard(self) -> None:
        if self.parquet and self.writer is not None:
            self.writer.close()
        self.partial.unlink(missing_ok=True)


def check_batch(
    batch: batches.Batch, profile: Profile, cfg: Config, histograms: drift.Histograms
) -> int:
    """Pass one: every partition checked and counted; the gate's verdict; the rows."""
    gate = quality.Gate(profile, cfg.monitor.range_tolerance, batch.source)
    rows = 0
    features = [feature.name for feature in profile.features]
    with _progress("checking") as bar:
        for partition in batch.partitions(cfg.monitor.batch_rows, features):
            gate.check(partition)
            if not gate.broken:  # a missing column would fail the counting too
                histograms.add_features(partition)
            rows += len(partition)
            bar.update(len(partition))
    gate.verdict()
    if rows == 0:
        raise DataError(f"{batch.source} holds no rows to score")
    return rows


def _scored(
    batch: batches.Batch,
    cfg: Config,
    loaded: registered.Registered,
    profile: Profile,
    labels: dict[str, str],
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Pass two: each partition's own columns but the features (an id, say), with the label,
    each class's probability and the `labels` columns."""
    import numpy as np

    inputs = loaded.inputs or [feature.name for feature in profile.features]
    features = {feature.name for feature in profile.features} | set(inputs)
    with _progress("scoring") as bar:
        for partition in batch.partitions(cfg.monitor.batch_rows):
            scores = np.asarray(loaded.spec.scores(loaded.model, partition[inputs]), dtype=float)
            kept = partition.drop(columns=[c for c in partition.columns if c in features])
            bar.update(len(partition))
            # The label: the class more probable than not, as a binary classifier decides.
            yield (
                kept.assign(
                    prediction=(scores > 0.5).astype("int8"),
                    probability_0=1 - scores,
                    probability_1=scores,
                    **labels,
                ),
                scores,
            )


def write_predictions(
    batch: batches.Batch,
    cfg: Config,
    loaded: registered.Registered,
    profile: Profile,
    labels: dict[str, str],
    destination: Path,
    histograms: drift.Histograms,
) -> None:
    """Pass two: score each partition, count its P(1), write it; the output appears whole,
    or not at all."""
    written = Predictions(destination)
    try:
        for frame, scores in _scored(batch, cfg, loaded, profile, labels):
            histograms.add(drift.PREDICTION, scores)
            written.write(frame)
        written.commit()
    except BaseException:
        written.discard()
        raise


def score(
    project: Project,
    tracking: Tracking,
    cfg: Config,
    name: str,
    reference: str,
    source: str,
    output: str | Path,
) -> Outcome:
    """Score `source` with version or alias `reference` of `name` into `output` (CSV, or
    Parquet by its suffix); raises QualityError (nothing written) or DriftError (predictions
    written, the run finished and tagged) after logging the run."""
    from ..tracking.delivery import metric_points
    from ..tracking.run import start_run

    destination = Path(output)
    if "://" in str(output):
        raise DataError(f"--output {output}: predictions are written to a local path")
    version = resolve(tracking, name, reference, project.cli)
    uri = f"models:/{name}/{version.version}"
    profile = reference_profile(tracking, version)
    batch = batches.resolve(source)
    loaded = registered.load(project, uri, tracking.uri)
    histograms = drift.Histograms(profile)
    started = time.perf_counter()
    with start_run(project, tracking, "score") as run:
        linked = model_id(version)
        run.tags({**RUN_KIND, "model.name": name, "model.version": str(version.version),
                  "model.id": linked or "", "batch.source": source})  # fmt: skip
        rows = check_batch(batch, profile, cfg, histograms)
        run.dataset(_dataset(batch, rows), "inference", linked)
        labels = {"model_name": name, "model_version": str(version.version),
                  "run_id": run.run_id, "scored_at": datetime.now(UTC).isoformat()}  # fmt: skip
        write_predictions(batch, cfg, loaded, profile, labels, destination, histograms)
        seconds = time.perf_counter() - started
        measured = drift.measure(histograms, cfg.monitor)
        _log_drift(run, measured, source, uri)
        speed = {"rows": rows, "rows_per_s": rows / seconds}
        run.metrics(metric_points({**speed, **measured.metrics()}))
    return Outcome(rows, destination, run.run_id, uri, measured, seconds)


def _dataset(batch: batches.Batch, rows: int) -> Any:
    from mlflow.entities import Dataset

    kind = "s3" if batch.source.startswith("s3://") else "local"
    return Dataset(
        name=batch.name,
        digest=batch.digest,
        source_type=kind,
        source=json.dumps({"uri": batch.source}),
        profile=json.dumps({"num_rows": rows}),
    )


def _log_drift(run: RunLogger, measured: drift.Drift, source: str, uri: str) -> None:
    figure = drift.summary(measured)
    run.figure(figure, "monitor/drift.png")
    run.text(drift.report(measured, figure, source, uri), "monitor/drift.html")
    run.tags({"monitor.drift": ",".join(measured.drifted) or "none"})
