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
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data import DataError
from ..models import registered
from ..registry import resolve
from . import batches, drift, output, quality
from .profile import PROFILE, Profile, ProfileError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from mlflow.entities.model_registry import ModelVersion

    from ..config import Config
    from ..project import Project
    from ..tracking.run import RunLogger
    from ..tracking.store import Tracking

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
            text = Path(path).read_bytes().decode("utf-8", errors="replace")
        return Profile.from_json(text, where)
    except (MlflowException, OSError) as error:
        raise ProfileError(
            f"version {version.version} of {version.name} has no {where}: it was trained "
            "before monitoring profiles were logged; train and promote a new version to score "
            "with checks"
        ) from error


def _progress(label: str) -> Any:
    from tqdm import tqdm

    return tqdm(desc=label, unit=" rows", unit_scale=True, disable=None, leave=False)


@dataclass(frozen=True)
class Checked:
    """What pass one found: the rows, and the batch's own columns (not the features) with
    their types, the same in every partition."""

    rows: int
    columns: list[str]
    schema: pa.Schema


def _own_columns(partition: pd.DataFrame, features: set[str], source: str) -> list[str]:
    own = [column for column in partition.columns if column not in features]
    taken = sorted(set(own) & set(output.SCORE_COLUMNS))
    if taken:
        raise DataError(f"{source} has columns named as the predictions' own {taken}: rename them")
    return own


def check_batch(
    batch: batches.Batch, profile: Profile, cfg: Config, histograms: drift.Histograms
) -> Checked:
    """Pass one: every partition checked against the profile and counted into the drift
    histograms; the gate's verdict; the rows; the batch's own columns, the same in each
    partition, with types that unify across them."""
    import pyarrow as pa

    gate = quality.Gate(profile, cfg.monitor.range_tolerance, batch.source)
    names = [feature.name for feature in profile.features]
    features = set(names)
    rows, columns, schema = 0, None, pa.schema([])
    with _progress("checking") as bar:
        for partition in batch.partitions(cfg.monitor.batch_rows, names):
            if partition.empty:  # a header-only file
                continue
            own = _own_columns(partition, features, batch.source)
            if columns is None:
                columns = own
            elif set(own) != set(columns):
                raise DataError(
                    f"{batch.source}: its files differ in their columns ({sorted(columns)} and "
                    f"{sorted(own)}): score them as separate batches"
                )
            try:
                found = pa.Schema.from_pandas(partition[columns], preserve_index=False)
                schema = pa.unify_schemas([schema, found], promote_options="permissive")
            except (pa.ArrowException, ValueError, TypeError) as error:
                raise DataError(
                    f"{batch.source}: a column changes type between its files or rows: {error}"
                ) from error
            gate.check(partition)
            if not gate.broken:  # a missing column would fail the counting too
                histograms.add_features(partition)
            rows += len(partition)
            bar.update(len(partition))
    gate.verdict()
    if rows == 0 or columns is None:
        raise DataError(f"{batch.source} holds no rows to score")
    return Checked(rows, columns, schema)


def _scored(
    batch: batches.Batch,
    cfg: Config,
    loaded: registered.Registered,
    profile: Profile,
    labels: dict[str, str],
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Pass two: each partition with the label, each class's probability and the `labels`
    columns."""
    import numpy as np

    names = [feature.name for feature in profile.features]
    inputs = loaded.inputs or names
    with _progress("scoring") as bar:
        for partition in batch.partitions(cfg.monitor.batch_rows, names):  # as pass one
            if partition.empty:
                continue
            scores = np.asarray(loaded.spec.scores(loaded.model, partition[inputs]), dtype=float)
            bar.update(len(partition))
            # The label: the class more probable than not, as a binary classifier decides.
            yield (
                partition.assign(
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
    written: output.Predictions,
    histograms: drift.Histograms,
) -> int:
    """Pass two: score each partition, count its P(1), write it (not yet in place); the rows.
    A batch whose files changed since pass one is refused."""
    rows = 0
    for frame, scores in _scored(batch, cfg, loaded, profile, labels):
        histograms.add(drift.PREDICTION, scores)
        written.write(frame)
        rows += len(frame)
    batch.unchanged()
    return rows


def score(
    project: Project,
    tracking: Tracking,
    cfg: Config,
    name: str,
    reference: str,
    source: str,
    destination: str,
) -> Outcome:
    """Score `source` with version or alias `reference` of `name` into `destination` (CSV, or
    Parquet by its suffix); raises QualityError (nothing written), or returns the outcome
    whose drift the caller checks (the predictions written, the run finished and tagged)."""
    from ..tracking.delivery import metric_points
    from ..tracking.run import start_run

    batch = batches.resolve(source)
    path = output.destination(destination, batch)
    version = resolve(tracking, name, reference, project.cli)
    uri = f"models:/{name}/{version.version}"
    profile = reference_profile(tracking, version)
    loaded = registered.load(project, uri, tracking.uri)
    histograms = drift.Histograms(profile)
    started = time.perf_counter()
    with start_run(project, tracking, "score") as run:
        linked = model_id(version)
        run.tags({**RUN_KIND, "model.name": name, "model.version": str(version.version),
                  "model.id": linked or "", "batch.source": source})  # fmt: skip
        checked = check_batch(batch, profile, cfg, histograms)
        run.dataset(_dataset(batch, checked.rows), "inference", linked)
        labels = {"model_name": name, "model_version": str(version.version),
                  "run_id": run.run_id, "scored_at": datetime.now(UTC).isoformat()}  # fmt: skip
        written = output.Predictions(path, checked.columns, checked.schema)
        try:
            rows = write_predictions(batch, cfg, loaded, profile, labels, written, histograms)
            if rows != checked.rows:
                raise DataError(f"{source} gave {rows} rows to score, {checked.rows} to check")
            seconds = time.perf_counter() - started
            measured = drift.measure(histograms, cfg.monitor)
            _log_drift(run, measured, source, uri)
            speed = {"rows": rows, "rows_per_s": rows / seconds}
            run.metrics(metric_points({**speed, **measured.metrics()}))
            written.commit()  # the last step: a run that failed leaves no predictions
        except BaseException:
            written.discard()
            raise
    return Outcome(rows, path, run.run_id, uri, measured, seconds)


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
