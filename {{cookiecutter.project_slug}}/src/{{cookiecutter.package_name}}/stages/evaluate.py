"""Stage `evaluate`: metrics and plots of the train stage's model (DVC metrics and plots
files), logged to the same run, then the model's registration."""

from __future__ import annotations

import json
import re
from typing import Any

import mlflow

from .. import report
from ..config import Config
from ..data import DataError
from ..models.base import model_uuid
from ..steps import Summary, publish, resolve
from ..tracking.run import resume_run
from ..tracking.store import connect
from . import MODEL_DIR, MODEL_URI_TAG, PRODUCED_TAG, RUN_FILE, main, record_run


def producing_run(cfg: Config) -> dict[str, Any]:
    """The train stage's run of the model in MODEL_DIR: models/run.json when it names this
    model, else the run the tracking store tags with its model_uuid (a clone, an applied
    experiment)."""
    uuid = model_uuid(MODEL_DIR)
    if uuid is None:
        raise DataError(f"{MODEL_DIR} is missing: run `dvc repro train` (or `dvc pull`) first.")
    if RUN_FILE.exists():
        produced: dict[str, Any] = json.loads(RUN_FILE.read_text())
        if produced.get("model_uuid") == uuid:
            return produced
    if not re.fullmatch(r"[0-9a-f]{32}", uuid):
        raise DataError(f"{MODEL_DIR}/MLmodel: model_uuid {uuid!r} is not one this project wrote")
    connect(cfg)
    runs = mlflow.search_runs(
        experiment_names=[cfg.tracking.experiment_name],
        filter_string=f"tags.`{PRODUCED_TAG}` = '{uuid}' AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs:
        raise DataError(
            f"no run of experiment {cfg.tracking.experiment_name!r} trained {MODEL_DIR} "
            f"(model_uuid {uuid}) in this tracking store: run `dvc repro -f train`."
        )
    run = runs[0]
    uri = run.data.tags.get(MODEL_URI_TAG) or None
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "model_uri": uri,
        "model_uuid": uuid,
    }


def evaluate(cfg: Config) -> Summary:
    produced = producing_run(cfg)
    spec, backend = resolve(cfg)
    model = spec.load(MODEL_DIR)
    with backend.session():
        result = report.build(backend, spec, model, backend.read_splits())
    report.write(result)
    with resume_run(cfg, produced["run_id"], produced["run_name"]) as run:
        summary = publish(cfg, result, produced["model_uri"], run)
    record_run({**produced, "evaluated": True})
    return summary


if __name__ == "__main__":
    main(evaluate)
