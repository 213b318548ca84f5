# The two set-up commands of the README: `make demo` and `make test`. Each builds its own
# virtualenv (.venv) with everything it needs; a changed pyproject.toml reinstalls.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench browser interop fault clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/otel-audit demo

# Browser tests drive Debian's chromium; install it when we may (root), else they skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "chromium not installed: browser tests will be skipped"

# Interop tests drive the OpenTelemetry JS SDK's exporters; they skip when node_modules is absent.
interop:
	@if command -v npm >/dev/null 2>&1; then \
	  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error) || echo "npm ci failed: Node interop tests will be skipped"; \
	else echo "npm not installed: Node interop tests will be skipped"; fi

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(BIN)/.installed browser interop lint
	$(BIN)/pytest -q

# Real faults (kill -9, store write failures, a full journal disk, hostile ids and times) against
# real `serve` processes: sent/acknowledged/stored/lost/duplicated per scenario; fails on any loss.
fault: $(BIN)/.installed
	$(BIN)/python tests/fault/run.py

bench: $(BIN)/.installed
	$(BIN)/python -m bench.all --quick

clean:
	rm -rf $(VENV) otel-audit-data otel-audit-demo-data .pytest_cache tests/interop/node_modules
