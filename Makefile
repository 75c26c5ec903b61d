# The README's two commands: `make serve` and `make test`. Both set everything up on a
# fresh machine (a .venv with the package and its dependencies, the sample project).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := data/sample/items.csv
PROJECT ?= data/sample
PIP_FLAGS ?= --disable-pip-version-check --progress-bar off

# FiftyOne: bundled mongod, no usage tracking, accept the bundled MongoDB version
export FIFTYONE_DO_NOT_TRACK := true
export FIFTYONE_DATABASE_VALIDATION := false

.PHONY: serve test bench install sample lint clean help

help:
	@echo "make serve   set up, then serve the dashboards with Voila on 127.0.0.1"
	@echo "make test    set up, then run the whole test suite (pytest + nbval)"
	@echo "make bench   run the benchmarks and write benchmarks/RESULTS.md"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "workbench needs Python >= 3.11; run: make PYTHON=python3.11 ...")'
	@$(PYTHON) -m venv $(VENV) || { echo "cannot create a virtualenv: on Debian/Ubuntu run 'apt-get install python3-venv'"; rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install $(PIP_FLAGS) -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_FLAGS) -q -e ".[test,bench,postgres]"
	@touch $@

install: $(STAMP)

$(SAMPLE): | $(STAMP)
	$(BIN)/workbench sample data/sample

sample: $(SAMPLE)

serve: $(STAMP) $(SAMPLE)
	$(BIN)/workbench serve $(PROJECT)

# Two pytest processes: Playwright's sync API keeps an event loop running in the main
# thread, so the real-browser tests (marker `browser`) run apart from everything else.
test: $(STAMP) $(SAMPLE)
	@rc=0; \
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env \
		--doctest-modules workbench -p no:cacheprovider -m "not browser" $(PYTEST_ARGS) || rc=$$?; \
	$(BIN)/python -m pytest tests -p no:cacheprovider -m browser $(PYTEST_ARGS) || rc=$$?; \
	exit $$rc

bench: $(STAMP) $(SAMPLE)
	$(BIN)/python benchmarks/run_all.py $(BENCH)

lint: $(STAMP)
	$(BIN)/python -m ruff check workbench tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
