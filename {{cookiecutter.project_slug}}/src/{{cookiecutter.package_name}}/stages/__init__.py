"""The DVC stages of dvc.yaml, one module each (`python -m <package>.stages.<name>`), reading
params.yaml. dvc.yaml lists every module of this package a stage imports as its dependency,
and uv.lock, which pins the library (a test checks)."""
