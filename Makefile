# linkgen: the commands README names. Each target creates .venv itself on a fresh machine.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PYTEST_ARGS ?=

.PHONY: run test lint format bench clean install install-test

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "linkgen needs Python 3.11 or newer (python3.11 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## run: migrate the embedded database and serve web app, link domain and worker on :8000
run: $(VENV)/.installed
	$(BIN)/linkgen db upgrade
	$(BIN)/linkgen serve

## test: install test dependencies and run the whole suite (PostgreSQL when configured)
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

## lint: ruff (lint + format check) and mypy --strict
lint: $(VENV)/.installed-test
	$(BIN)/ruff check linkgen tests benchmarks app.py
	$(BIN)/ruff format --check linkgen tests benchmarks app.py
	$(BIN)/mypy

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix linkgen tests benchmarks app.py
	$(BIN)/ruff format linkgen tests benchmarks app.py

## bench: every benchmark under benchmarks/ (bounded; writes benchmarks/RESULTS.md)
bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
