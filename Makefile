# Two commands do all the set-up on a fresh machine (Python 3.11 and the package registries):
#   make demo   the dev stack's plan summary, then the scoring host scoring the sample model
#   make test   the whole test suite (lint, type check, infrastructure, scoring host, delivery)
# Everything else here is a convenience for development.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev
# The environments are kept per machine, keyed by what they are built from, so a second clone
# (CI's) reuses them and a change to any dependency file builds a new one: .venv links to
# $(CACHE)/venv-<python>-<hash of the dependency files>; checkov gets a venv of its own there.
CACHE ?= $(HOME)/.cache/mlscore
DEPS := pyproject.toml scoring/requirements.txt scoring/requirements-functions.txt \
        scoring/requirements-dev.txt scoring/sample_model/requirements.txt
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
DEPS_HASH := $(shell cat $(DEPS) | sha256sum | cut -c1-16)
VENV_STORE := $(CACHE)/venv-$(PYVER)-$(DEPS_HASH)
NPM_STORE := $(CACHE)/npm-$(shell cat package.json package-lock.json | sha256sum | cut -c1-16)
CHECKOV_PIN := checkov>=3.2,<4
CHECKOV_STORE := $(CACHE)/checkov-$(PYVER)-$(shell echo '$(CHECKOV_PIN)' | sha256sum | cut -c1-16)
# The suite starts hundreds of Pythons that import this project (workers, hosts, CLIs): they
# compile its sources once and keep the bytecode, and pytest keeps its assert-rewritten test
# modules so too. Where the environment turns that off (PYTHONDONTWRITEBYTECODE, as on the
# machines this was measured on), each would compile them again: 4% of the suite's CPU.
unexport PYTHONDONTWRITEBYTECODE
# The time-travel check: the graph tests at dates in two consecutive 90-day key periods (231
# ends and 232 begins on 2027-03-03) and a year ahead, under libfaketime (Debian's faketime).
TIME_TRAVEL_DATES := 2027-03-02 2027-03-04 2027-12-07

.PHONY: demo test setup system-deps time-travel preview serve-local bench critical-path fuzz \
        lint typecheck clean contract

demo: setup  # the plan's summary, the score, where the logs are (the whole plan: make preview)
	$(PY) -m scoring.demo --stack $(STACK)

test: setup system-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pyright
	$(PY) -m pytest -q -p no:cacheprovider
	$(MAKE) --no-print-directory contract
	$(MAKE) --no-print-directory time-travel

# The host's contract tests on the images' other Pythons (3.10, 3.12, 3.13; the suite above runs
# on 3.11), each in a venv of its own cached in $(CACHE) (tests/scoring/contract.py).
contract: setup
	$(PY) tests/scoring/contract.py

# No test may depend on today's date: the tests on the program's graph and the key schedule
# pass at every date of TIME_TRAVEL_DATES. Every clock of every process (test servers included,
# monotonic too: libfaketime 0.9.10 answers EINVAL to Python's absolute monotonic sleeps when it
# leaves that clock alone) moves by the same offset, so they all agree with each other. One worker
# per core: these tests compute (runs of the program) rather than wait, unlike the whole suite.
time-travel: setup system-deps
	@for d in $(TIME_TRAVEL_DATES); do \
	  offset=$$(( $$(date -ud "$$d 12:00:00" +%s) - $$(date +%s) )); \
	  echo "time travel: $$d (clock offset $$offset s)"; \
	  faketime -f "+$$offset" \
	    $(PY) -m pytest -q -p no:cacheprovider -n $$(nproc) --graph-only tests/infra tests/delivery \
	    || exit 1; done

setup:
	@if [ ! -f $(VENV_STORE)/.installed ]; then \
	  echo "building $(VENV_STORE)"; rm -rf $(VENV_STORE) && mkdir -p $(CACHE) \
	  && $(PYTHON) -m venv $(VENV_STORE) \
	  && $(VENV_STORE)/bin/python -m pip install --quiet --upgrade pip \
	  && $(VENV_STORE)/bin/python -m pip install --quiet -e '.[dev]' -r scoring/requirements-dev.txt \
	  && touch $(VENV_STORE)/.installed; fi
	@if [ "$$(readlink $(VENV))" != "$(VENV_STORE)" ]; then rm -rf $(VENV) && ln -s $(VENV_STORE) $(VENV); fi
	@# The project is installed editable (python -m migrate and mlscore-migrate from any folder):
	@# in a venv another clone built, it points at that clone, so point it at this one.
	@$(PY) -I -c 'import migrate, pathlib, sys; sys.exit(not pathlib.Path(migrate.__file__).resolve().is_relative_to(pathlib.Path("$(CURDIR)").resolve()))' 2>/dev/null \
	  || PYTHONWARNINGS=ignore $(PY) -m pip install --quiet --no-deps -e .
	@touch $(VENV_STORE)/.installed  # last used; the three most recent environments are kept
	@ls -1dt $(CACHE)/venv-*/.installed | tail -n +4 | xargs -r -n1 dirname | xargs -r rm -rf

# What the tests need beyond the venv: redis-server, Prometheus and faketime (apt), Azurite (npm),
# checkov (own venv).
system-deps:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@command -v npm >/dev/null || { \
	  echo "installing nodejs and npm (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@command -v prometheus >/dev/null || { \
	  echo "installing prometheus (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }
	@command -v faketime >/dev/null || { \
	  echo "installing faketime (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null; }
	@# Azurite (npm) is kept per machine like the venvs: node_modules links to $(NPM_STORE).
	@test -x $(NPM_STORE)/node_modules/.bin/azurite || { echo "installing Azurite into $(NPM_STORE)"; \
	  rm -rf $(NPM_STORE) && mkdir -p $(NPM_STORE) && cp package.json package-lock.json $(NPM_STORE)/ \
	  && npm ci --prefix $(NPM_STORE) --no-audit --no-fund --loglevel=error; }
	@if [ "$$(readlink node_modules)" != "$(NPM_STORE)/node_modules" ]; then \
	  rm -rf node_modules && ln -s $(NPM_STORE)/node_modules node_modules; fi
	@touch $(NPM_STORE)/node_modules  # last used; the three most recent are kept
	@ls -1dt $(CACHE)/npm-*/node_modules | tail -n +4 | xargs -r -n1 dirname | xargs -r rm -rf
	@# checkov pins packaging<24, pulumi needs >=26: it lives in a venv of its own.
	@test -f $(CHECKOV_STORE)/.installed || { echo "installing checkov into $(CHECKOV_STORE)"; \
	  rm -rf $(CHECKOV_STORE) && $(PYTHON) -m venv $(CHECKOV_STORE) \
	  && $(CHECKOV_STORE)/bin/pip install --quiet '$(CHECKOV_PIN)' && touch $(CHECKOV_STORE)/.installed; }
	@mkdir -p .local && ln -sfn $(CHECKOV_STORE) .local/checkov

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
	@echo "the environments themselves stay in $(CACHE) (rm -rf it to rebuild them)"
