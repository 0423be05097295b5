"""Stage `train`: one new MLflow run; the model directory is its output, and the run's identity
goes to models/run.json and the run's tags (the evaluate stage continues the same run)."""

from __future__ import annotations

from ..config import Config
from ..steps import fit_and_log, resolve
from ..tracking.run import start_run
from ..tracking.store import connect
from . import MODEL_DIR, MODEL_URI_TAG, PRODUCED_TAG, main, record_run


def train(cfg: Config) -> None:
    spec, backend = resolve(cfg)
    uri = connect(cfg)
    with backend.session(), start_run(cfg, uri, spec.name) as run:
        splits = backend.read_splits()
        model, model_uri = fit_and_log(cfg, backend, spec, splits, run)
        uuid = spec.save(model, MODEL_DIR, backend.sample(splits))
        run.tags({PRODUCED_TAG: uuid, MODEL_URI_TAG: model_uri or ""})
        produced = {
            "run_id": run.run_id,
            "run_name": run.run_name,
            "model_uri": model_uri,
            "model_uuid": uuid,
        }
        record_run(produced)


if __name__ == "__main__":
    main(train)
