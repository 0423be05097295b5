"""The project's parts, wired into the mlrig library: every command, stage and job runs with
this object (README: "Where to change what")."""

from pathlib import Path

import mlrig

from . import data, metrics, models, report

PROJECT = mlrig.Project(
    root=Path(__file__).resolve().parents[2],  # the project root: src/<package>/ lives there
    package=__package__,
    models=models.SPECS,
    producers=data.PRODUCERS,
    metrics=metrics.score,
    report=report.build,
{%- if cookiecutter.ci_workflows == "yes" %}
    commands=mlrig.webhook_commands(),  # registry events -> promote.yml (README)
{%- endif %}
)
