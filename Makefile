# cnnlab: `make run` starts the API and a worker; `make test` sets everything up and runs the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export CNNLAB_PORT ?= 5000

.PHONY: run test test-fast venv services migrate bench lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

services:  ## start the local Redis and PostgreSQL when they are installed but stopped
	scripts/services.sh

migrate: venv
	$(VENV)/bin/alembic upgrade head

run: venv migrate
	scripts/run.sh

lint: venv  ## ruff, and the layer rules (import-linter contracts in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

test: lint services
	scripts/test-deps.sh
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv  ## no Redis, PostgreSQL, worker processes or Chromium
	$(PY) -m pytest -m "not services" $(PYTEST_ARGS)

bench: venv services
	$(PY) -m bench.throughput
	$(PY) -m bench.service

clean:
	rm -rf var .pytest_cache
