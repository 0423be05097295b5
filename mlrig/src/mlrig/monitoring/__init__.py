"""Operating the champion: the reference profile a training run logs, the data-quality gate,
drift against the reference, alerts, and the scoring job that runs them."""
