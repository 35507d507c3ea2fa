# raftq developer targets. Every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint unit integration chaos chaos-smoke bench clean flow-heavy

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/raftq up

lint: $(STAMP)
	$(BIN)/ruff check raftq tests chaos bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

test: lint $(STAMP)
	$(BIN)/pytest -q tests

# The heavy proofs of flow control (docs/flow-control.md): minutes, not in make test.
flow-heavy: $(STAMP)
	$(BIN)/pytest -q -s -m heavy tests/integration/test_flow.py

chaos-smoke: $(STAMP)
	$(BIN)/python -m chaos run --smoke

chaos: $(STAMP)
	$(BIN)/python -m chaos run --all --duration 300

bench: $(STAMP)
	$(BIN)/raftq bench

clean:
	rm -rf $(VENV) nodes/*/ .pytest_cache .mypy_cache
