"""The project's own parts -- its model kinds (`models/`), data producers (`data.py`), metrics
and report (`metrics.py`, `report.py`, `plots.py`) and its DVC stages (`stages/`) -- wired into
the mlrig library in `project.py`. Yours to edit."""
