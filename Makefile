# The two commands: `make demo` and `make test`. Each builds .venv from nothing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest tools bench mutate clean

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

# Command-line peers the tests use as clients would (dig, wrk, dnsperf, promtool, ip, chromium).
# Installed when we are root and they are missing; tests that need one skip, saying so,
# only when it cannot be had.
tools:
	@./.ci/tools || echo "make: some optional tools could not be installed; their tests will say so"

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite under coverage, the processes it spawns included (pyproject.toml
# [tool.coverage.run]), then held to the floors in [tool.urn.coverage]. Most tests wait
# on their fleets' intervals, so they run in PYTEST_WORKERS processes (pytest-xdist;
# on 2 cores 4 workers took 5m24s where 2 took 7m15s, docs/testing.md); the `serial`
# ones (benchmark runs, which measure) run afterwards, alone on the machine.
# Both halves always run, so one failure never hides the other's.
PYTEST_WORKERS ?= 4
pytest: $(STAMP)
	rm -f .coverage .coverage.*
	@status=0; \
	$(BIN)/coverage run -m pytest -q -n $(PYTEST_WORKERS) -m 'not serial' --durations=25 || status=1; \
	$(BIN)/coverage run -m pytest -q -p no:xdist -m serial --durations=10 || status=1; \
	exit $$status
	$(BIN)/coverage combine -q
	$(BIN)/python .ci/coverage_floor.py

test: tools lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench.micro.codec

# Mutation testing of the pure cores ([tool.mutmut] in pyproject.toml, docs/testing.md).
# Not part of `make test`: it takes minutes. A fresh run each time, so the scores are honest;
# narrow it with MUTANTS, e.g. `make mutate MUTANTS='checker.assign.*'`.
mutate: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run $(MUTANTS)
	$(BIN)/mutmut results --all true | $(BIN)/python .ci/mutation_score.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache mutants
