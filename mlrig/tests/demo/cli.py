"""The demo project's command line."""

import sys

import mlrig

from .project import PROJECT

if __name__ == "__main__":
    sys.exit(mlrig.main(PROJECT))
