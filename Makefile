# bouncemgr — the two commands: `make run` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deps-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint venv services bench-engine clean-var help

help:
	@echo "make run    install, migrate, serve (gunicorn, DEBUG off) + worker + beat on http://$(HOST):$(PORT)/"
	@echo "make test   install (incl. test services) and run the whole suite"

# The virtualenv with the project and its dev extras; rebuilt when pyproject.toml changes.
venv: $(STAMP)
$(STAMP): pyproject.toml scripts/bootstrap-python.sh
	@bash scripts/bootstrap-python.sh "$(VENV)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

run: venv
	@HOST=$(HOST) PORT=$(PORT) bash scripts/run.sh

# Debian packages of the real servers the tests start (PostgreSQL, Redis, Dovecot).
services:
	@bash scripts/install-test-services.sh

test: venv services
	@bash scripts/test.sh

lint: venv
	$(VENV)/bin/ruff check .

bench-engine: venv
	$(PY) bench/bench_engine.py
