"""Stage `evaluate`: metrics and plots of the train stage's model (DVC metrics and plots
files), logged to the same run, then the model's registration."""

from __future__ import annotations

import json

from .. import report
from ..config import Config
from ..data import DataError
from ..steps import Summary, publish, resolve
from ..tracking.run import resume_run
from . import MODEL_DIR, RUN_FILE, main


def evaluate(cfg: Config) -> Summary:
    if not RUN_FILE.exists():
        raise DataError(f"{RUN_FILE} is missing: run `dvc repro train` first.")
    produced = json.loads(RUN_FILE.read_text())
    spec, backend = resolve(cfg)
    model = spec.load(MODEL_DIR)
    with backend.session():
        result = report.build(backend, spec, model, backend.read_splits())
    report.write(result)
    with resume_run(cfg, produced["run_id"], produced["run_name"]) as run:
        return publish(cfg, result, produced["model_uri"], run)


if __name__ == "__main__":
    main(evaluate)
