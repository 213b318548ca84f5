# The two set-up commands of the README: `make demo` and `make test`. Each builds its own
# virtualenv (.venv) with everything it needs; a changed pyproject.toml reinstalls.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench browser interop fault clean shell dist wheel-smoke config-reference screenshots

# pip's own output is the progress report: the first install takes a minute or two (chDB, pyarrow)
$(BIN)/.installed: pyproject.toml
	@echo "setting up $(VENV): installing otel-audit and its dependencies (the first time takes 1-2 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install --progress-bar on -e '.[dev]' | grep --line-buffered -E '^(Collecting|Successfully installed)' || true
	@$(BIN)/otel-audit --help >/dev/null && touch $@

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

test: $(BIN)/.installed browser interop lint wheel-smoke
	$(BIN)/pytest -q

# Real faults (kill -9, store write failures, a full journal disk, hostile ids and times) against
# real `serve` processes: sent/acknowledged/stored/lost/duplicated per scenario; fails on any loss.
fault: $(BIN)/.installed
	$(BIN)/python tests/fault/run.py

# A shell with .venv active, so `otel-audit` is on PATH (or: . .venv/bin/activate)
shell: $(BIN)/.installed
	@echo "otel-audit is on PATH in this shell; exit to leave it"
	@VIRTUAL_ENV="$(CURDIR)/$(VENV)" PATH="$(CURDIR)/$(BIN):$$PATH" $${SHELL:-/bin/sh}

# sdist and wheel in dist/ (the package is on no index: install the wheel, or `pip install .` from a checkout)
dist: $(BIN)/.installed
	$(BIN)/python -m build --outdir dist .

# the wheel in a clean virtualenv: base install, then the receiver extra (init, serve, emit, query, verify)
wheel-smoke: $(BIN)/.installed
	PYTHON=$(PYTHON) VENV=$(VENV) .ci/wheel-smoke

# docs/CONFIGURATION.md from the config model (a test fails when it is stale)
config-reference: $(BIN)/.installed
	$(BIN)/python -m receiver.config_reference

# docs/screenshots/: the UI's main views, desktop and 390 px, light and dark, over demo traffic
screenshots: $(BIN)/.installed browser
	$(BIN)/python tests/screenshots.py

bench: $(BIN)/.installed
	$(BIN)/python -m bench.all --quick

clean:
	rm -rf $(VENV) otel-audit-data otel-audit-demo-data .pytest_cache tests/interop/node_modules dist build *.egg-info
