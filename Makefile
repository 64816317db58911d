# The two commands of the quick start: `make run` and `make test`.
# Both create .venv when needed and install what they need; nothing else is assumed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
DEMO_WS := workspaces/demo
DEMO_FILES := $(wildcard data/demo/*.csv.gz)
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: run test lint bench demo-workspace chromium engines pdftools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-deps: requirements.txt requirements-test.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

$(DEMO_WS)/kpitree.duckdb: $(DEMO_FILES) | $(VENV)/.run-deps
	rm -rf $(DEMO_WS).tmp && mkdir -p $(dir $(DEMO_WS))
	$(BIN)/python -m kpitree ingest --workspace $(DEMO_WS).tmp $(DEMO_FILES) > /dev/null
	rm -rf $(DEMO_WS) && mv $(DEMO_WS).tmp $(DEMO_WS)

demo-workspace: $(DEMO_WS)/kpitree.duckdb

run: $(VENV)/.run-deps demo-workspace
	$(BIN)/python -m streamlit run app.py --server.port $(PORT)

chromium:
	@command -v chromium > /dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium > /dev/null; }

# The engines the equality tests start themselves (tests/engine_fixtures.py): PostgreSQL's server
# binaries and a Java runtime for Spark, from Debian's packages when absent.
engines:
	@ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq postgresql > /dev/null; }
	@command -v java > /dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq openjdk-17-jre-headless > /dev/null; }

# pdftoppm, which tests/test_report.py renders the PDF report with.
pdftools:
	@command -v pdftoppm > /dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq poppler-utils > /dev/null; }

test: $(VENV)/.test-deps demo-workspace chromium engines pdftools
	$(BIN)/python -m pytest -q

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .

bench: $(VENV)/.test-deps
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_click.py

clean:
	rm -rf $(VENV) workspaces .pytest_cache
