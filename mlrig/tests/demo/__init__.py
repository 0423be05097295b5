"""A small project the library's tests run on (no bake needed): two model kinds, two data
producers, a report. Its root is this folder: conf/, params.yaml, the tracked raw data."""
