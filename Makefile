# The two commands: `make demo` and `make test`. Each builds .venv from nothing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest tools bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
		{ echo "make: urn needs Python 3.11 or newer (found '$(PYTHON)'; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/urn demo

# Command-line peers the tests use as clients would (dig, wrk, dnsperf, promtool, ip).
# Installed when we are root and they are missing; tests that need one skip, saying so,
# only when it cannot be had.
tools:
	@./.ci/tools || echo "make: some optional tools could not be installed; their tests will say so"

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

test: tools lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench.micro.codec

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
