"""Stage `train`: one MLflow run -- fit, log, evaluate, register -- whose DVC outputs are the
model directory and the report (metrics, plots, figures)."""

import mlrig

from ..project import PROJECT

if __name__ == "__main__":
    mlrig.stage(PROJECT, "train")
