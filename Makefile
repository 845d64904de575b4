# Liên Thông: `make demo` and `make test` each set up everything on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PGHOST ?= 127.0.0.1

.PHONY: setup system-deps venv ui-patch services demo check test test-unit bench lint ui up down up-prod down-prod clean

setup: system-deps venv ui-patch services

system-deps:
	@bash infra/scripts/system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip >/dev/null
	@$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# Vietnamese letters in the Prefect UI's run graph (docs/ui-patch.md); idempotent, cheap, and run on
# every setup because a reinstall of prefect brings the unpatched bundle back.
ui-patch: venv
	@$(BIN)/python -m infra.ui_patch >/dev/null

services:
	@bash infra/scripts/services.sh

demo: setup
	$(BIN)/lienthong demo

# Markers say what a test needs (pyproject.toml: postgres, prefect, topology, browser). Tests run on
# PYTEST_WORKERS xdist workers, each with its own scratch database and Prefect server, a module's
# tests on one worker (its module-scoped stack is started once), modules handed out in the order
# tests/conftest.py gives them (the long topologies first).
PYTEST_WORKERS ?= 3
PYTEST_PARALLEL = -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder

# The short loop: everything but the process topologies and the browser.
check: venv services
	$(BIN)/pytest -m "not topology and not browser" $(PYTEST_PARALLEL)

# CI (.ci/run): every test.
test: setup
	$(BIN)/pytest $(PYTEST_PARALLEL)

test-unit: venv
	$(BIN)/pytest tests/unit

bench: setup
	@# ocrmypdf is the digitization benchmark's second anchor only, never a dependency of the project.
	@$(BIN)/python -c "import ocrmypdf" 2>/dev/null || $(BIN)/pip install -q ocrmypdf
	$(BIN)/python -m bench

lint: venv
	$(BIN)/ruff check lienthong flows tasks tests bench samples infra
	$(BIN)/mypy lienthong
	@# The import contract in pyproject.toml ([tool.importlinter]); bench/ and tests/ are found from here.
	PYTHONPATH=. $(BIN)/lint-imports

ui: ui-patch
	$(BIN)/lienthong prefect-server

up: setup
	$(BIN)/python -m infra.local up

down: venv
	$(BIN)/python -m infra.local down

up-prod: setup
	$(BIN)/python -m infra.prod up

down-prod: venv
	$(BIN)/python -m infra.prod down

clean:
	rm -rf var .pytest_cache
