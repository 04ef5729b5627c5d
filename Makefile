# segport's everyday commands. On a fresh machine (Python 3.11+ and pip) the README's
# quick start is `make run` and `make test`; `make demo` shows a full export locally.
#
# Installs are remembered by stamp files inside each virtualenv, so a second
# `make test` reinstalls nothing unless a pyproject.toml changed.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

PYENV_ROOT := $(shell pyenv root 2>/dev/null)
# The MongoDB wire server for the store tests (mongoeco) needs Python 3.13.
MONGO_PYTHON := $(firstword $(wildcard $(PYENV_ROOT)/versions/3.13*/bin/python) \
                            $(shell command -v python3.13 2>/dev/null))
# helm-sdkpy (chart lint in the deploy tests) needs Python 3.12 or newer.
HELM_PYTHON := $(firstword $(wildcard $(PYENV_ROOT)/versions/3.1[2-9]*/bin/python) \
                           $(shell command -v python3.13 python3.12 2>/dev/null))

RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
MONGO_STAMP := .venv-mongo/.installed
HELM_STAMP := .venv-helm/.installed

.PHONY: help install run demo test lint format typecheck pytest redis chromium bench clean

help:
	@echo "make run     install and serve the API in embedded mode (prints a dev admin token)"
	@echo "make demo    install and run the demo (fake Constant Contact and sample data)"
	@echo "make test    install everything, then lint, type-check and run every test"
	@echo "make lint    ruff check, ruff format --check, mypy, import contracts"
	@echo "make format  ruff format and ruff check --fix"
	@echo "make bench   run the benchmarks in bench/"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "error: segport needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): $(BIN)/python pyproject.toml plugins/constant_contact/pyproject.toml \
              plugins/mailchimp/pyproject.toml
	$(BIN)/pip install --quiet -e . -e plugins/constant_contact -e plugins/mailchimp
	touch $@

$(TEST_STAMP): $(RUN_STAMP) tests/plugins/toy_destination/pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]' -e plugins/constant_contact -e plugins/mailchimp \
	  -e tests/plugins/toy_destination
	touch $@

$(MONGO_STAMP):
	@test -n "$(MONGO_PYTHON)" || { echo "error: Python 3.13 not found (looked in \
	$(PYENV_ROOT)/versions/3.13* and for python3.13 on PATH); the MongoDB wire server \
	for the store tests needs it" >&2; exit 1; }
	test -x .venv-mongo/bin/python || $(MONGO_PYTHON) -m venv .venv-mongo
	.venv-mongo/bin/pip install --quiet 'mongoeco[wire]'
	touch $@

$(HELM_STAMP):
	@test -n "$(HELM_PYTHON)" || { echo "error: Python 3.12+ not found (looked in \
	$(PYENV_ROOT)/versions/3.12+ and for python3.13/python3.12 on PATH); the Helm chart \
	lint needs it" >&2; exit 1; }
	test -x .venv-helm/bin/python || $(HELM_PYTHON) -m venv .venv-helm
	.venv-helm/bin/pip install --quiet helm-sdkpy
	touch $@

install: $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/segport serve --host $(HOST) --port $(PORT)

demo: $(RUN_STAMP)
	$(BIN)/segport demo --host $(HOST) --port $(PORT)

# The tests use Redis on 127.0.0.1:$(REDIS_PORT) (each suite its own database number);
# SEGPORT_TEST_REDIS_PORT moves it, so that two checkouts can run their suites at once.
REDIS_PORT ?= $(or $(SEGPORT_TEST_REDIS_PORT),6379)
redis: $(TEST_STAMP)
	@if $(BIN)/python -c "import redis; redis.Redis(host='127.0.0.1', port=$(REDIS_PORT), socket_timeout=1).ping()" 2>/dev/null; then \
	  echo "redis: answering on 127.0.0.1:$(REDIS_PORT)"; \
	else \
	  echo "redis: starting redis-server on 127.0.0.1:$(REDIS_PORT)"; \
	  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $(REDIS_PORT) --save "" --appendonly no; \
	  for _ in $$(seq 50); do \
	    $(BIN)/python -c "import redis; redis.Redis(host='127.0.0.1', port=$(REDIS_PORT), socket_timeout=1).ping()" 2>/dev/null && exit 0; \
	    sleep 0.1; \
	  done; \
	  echo "error: redis-server did not answer on 127.0.0.1:$(REDIS_PORT)" >&2; exit 1; \
	fi

# The console's browser tests drive Debian's chromium through Playwright (never Playwright's
# own browser download, which cannot work here).
chromium:
	@if command -v chromium >/dev/null 2>&1; then \
	  echo "chromium: $$(command -v chromium)"; \
	else \
	  echo "chromium: missing; installing Debian's chromium package for the console's browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	  command -v chromium >/dev/null || { echo "error: chromium did not install" >&2; exit 1; }; \
	fi

# mypy checks the core, the tests and every plugin (strict); lint-imports the layer
# contracts in .importlinter.
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# pytest exits with status 5 when it collects no test, which fails this target too.
pytest: $(TEST_STAMP) $(MONGO_STAMP) $(HELM_STAMP) redis chromium
	$(BIN)/pytest

test: lint pytest

bench: $(TEST_STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python "$$script"; done

clean:
	rm -rf $(VENV) .venv-mongo .venv-helm .mypy_cache .ruff_cache .pytest_cache
