# Two commands do all the set-up on a fresh machine (Python 3.11 and the package registries):
#   make demo   offline preview of the dev stack, then the scoring host serving the sample model
#   make test   the whole test suite (lint, type check, infrastructure, scoring host, delivery)
# Everything else here is a convenience for development.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-deps preview serve-local bench critical-path fuzz lint typecheck clean

demo: setup
	$(PY) -m preview $(STACK)
	$(PY) -m scoring.demo --stack $(STACK)

test: setup system-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pyright
	$(PY) -m pytest -q -p no:cacheprovider

setup: $(STAMP)

$(STAMP): pyproject.toml scoring/requirements.txt scoring/requirements-functions.txt scoring/requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -r scoring/requirements-dev.txt
	touch $(STAMP)

# What the tests need beyond the venv: redis-server (apt), Azurite (npm), checkov (own venv).
system-deps:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@command -v npm >/dev/null || { \
	  echo "installing nodejs and npm (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@test -x node_modules/.bin/azurite || npm ci --no-audit --no-fund --loglevel=error
	@# checkov pins packaging<24, pulumi needs >=26: it lives in a venv of its own.
	@test -x .local/checkov/bin/checkov || { echo "installing checkov into .local/checkov"; \
	  $(PYTHON) -m venv .local/checkov && .local/checkov/bin/pip install --quiet 'checkov>=3.2,<4'; }

preview: setup
	$(PY) -m preview $(STACK)

serve-local: setup
	$(PY) -m scoring.demo --keep

bench: setup system-deps
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) bench/run.py --duration 8 --cold-runs 5 --rounds 3

# The critical path of `pulumi up` from the program's graph, against the floor Azure imposes.
critical-path: setup
	$(PY) -m bench.critical_path dev prod

# schemathesis against a schema script's swagger (a benchmark, not a test: it runs until done).
fuzz: setup
	$(PY) -m pip install --quiet 'schemathesis>=3.30,<5'
	$(PY) bench/fuzz_swagger.py

lint: setup
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

typecheck: setup
	$(PY) -m pyright

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .local
