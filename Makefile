# iqc — the two commands the README opens with: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install demo test ui samples clean

$(BIN)/.iqc-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.iqc-installed  ## virtual environment in .venv with everything pinned in pyproject.toml

demo: install  ## rank the sample albums in data/albums and print where the CSVs are
	$(BIN)/iqc run

test: install  ## the test suite (what CI runs)
	$(BIN)/python -m pytest -n 2

ui: install  ## the Dagster UI on http://127.0.0.1:3000
	$(BIN)/iqc ui

samples: install  ## regenerate data/albums from photos shipped in installed packages
	$(BIN)/python data/make_samples.py

clean:
	rm -rf output data/iqc.duckdb data/iqc.duckdb.wal .dagster_home
