# raftq developer targets. Every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test test-ui lint unit integration chaos chaos-smoke bench clean flow-heavy

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

# The console in a real browser: Playwright (pip) drives Debian's chromium (apt, as
# root, when missing; Playwright's own browser download is not used).
UI_STAMP := $(VENV)/.ui-installed

$(UI_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,ui]'
	touch $(UI_STAMP)

test-ui: $(UI_STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	RAFTQ_UI=1 $(BIN)/pytest -q -s tests/integration/test_console_ui.py

chaos-smoke: $(STAMP)
	$(BIN)/python -m chaos run --smoke

chaos: $(STAMP)
	$(BIN)/python -m chaos run --all --duration 300

bench: $(STAMP)
	$(BIN)/raftq bench

clean:
	rm -rf $(VENV) nodes/*/ .pytest_cache .mypy_cache
